"""The hypothesis strategies of the suite, in one place: samples(info) draws inputs for an op of the
op table (minidl.optable) from its Inputs: shapes by its kind's rule, values by its domain."""

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from minidl.optable import OpInfo, Sample

seeds = st.integers(0, 2**16)
small_shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)
dtypes = st.sampled_from([np.float64, np.float32])
KINK_GAP = 0.1  # values keep this far from a kink: ε of the finite differences never straddles one


def values(rng: np.random.Generator, shape, domain: str, smooth: bool, kinks=()) -> np.ndarray:
    """float64 values of a domain; smooth: away from the kinks (and "wide" stays near 1)."""
    v = rng.standard_normal(shape)
    if domain == "positive":
        v = 0.5 + np.abs(v)
    elif domain == "probability":
        v = rng.uniform(0.05, 0.95, shape)
    elif domain == "distinct":  # no ties: a max has one winner
        v = rng.permutation(int(np.prod(shape))).reshape(shape) * 0.25
    elif domain == "wide" and not smooth:
        v = v * rng.choice([1.0, 30.0, 500.0])
    if smooth:
        for k in kinks:
            v = np.where(np.abs(v - k) < KINK_GAP, v + 2 * KINK_GAP, v)
    return v


@st.composite
def broadcast_pair(draw):
    shape = draw(small_shapes)
    other = tuple(draw(st.sampled_from([1, n])) for n in shape)
    other = other[draw(st.integers(0, len(other))) :]  # drop some leading dims too
    return (shape, other) if draw(st.booleans()) else (other, shape)


@st.composite
def conv_case(draw, transpose=False):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph = draw(st.integers(0, kh if transpose else kh - 1))
    pw = draw(st.integers(0, kw if transpose else kw - 1))
    n, c, o = draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 3))  # c = 4, o = 1: no im2col
    if transpose:
        h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        oph, opw = draw(st.integers(0, sh - 1)), draw(st.integers(0, sw - 1))
        if (h - 1) * sh - 2 * ph + kh + oph < 1 or (w - 1) * sw - 2 * pw + kw + opw < 1:
            ph = pw = 0
        return dict(n=n, c=c, o=o, h=h, w=w, k=(kh, kw), stride=(sh, sw), padding=(ph, pw), output_padding=(oph, opw))
    h = draw(st.integers(max(1, kh - 2 * ph), 7))
    w = draw(st.integers(max(1, kw - 2 * pw), 7))
    return dict(n=n, c=c, o=o, h=h, w=w, k=(kh, kw), stride=(sh, sw), padding=(ph, pw))


@st.composite
def pool_case(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))
    h, w = draw(st.integers(kh, 7)), draw(st.integers(kw, 7))
    return dict(
        shape=(draw(st.integers(1, 2)), draw(st.integers(1, 2)), h, w), k=(kh, kw), stride=stride, padding=padding
    )


MATMUL_KERNEL_SHAPES = [
    ((5, 7), (7, 3)),
    ((65, 17), (17, 130)),
    ((3, 1, 4, 5), (2, 5, 6)),
    ((6,), (6, 3)),
    ((2, 6), (6,)),
    ((2, 3, 70), (70, 2)),
    ((1, 1), (1, 1)),
    ((0, 4), (4, 3)),
    ((3, 0), (0, 2)),
]  # fmt: skip  partial tiles, a batch broadcast, vectors, empty


@st.composite
def _layout(draw, info: OpInfo, kernel: bool):
    """(shapes, args, kwargs, extra Sample fields) by the kind's rule."""
    kind, p = info.inputs.kind, info.inputs.params
    extra = {}
    if kind == "same":
        return [draw(small_shapes)], (), {}, extra
    if kind == "broadcast":
        return list(draw(broadcast_pair())), (), {}, extra
    if kind == "where":
        shape = draw(small_shapes)
        condition = np.random.default_rng(draw(seeds)).random(shape) > 0.5
        return [shape, shape], (), dict(condition=condition), extra
    if kind == "clamp_tensor":
        shape = draw(small_shapes)
        bounds = draw(st.sampled_from([("min", "max"), ("min",), ("max",)]))
        extra["kw_inputs"] = bounds
        return [shape] + [tuple(draw(st.sampled_from([1, n])) for n in shape) for _ in bounds], (), {}, extra
    if kind == "reduce":
        shape = draw(small_shapes)
        if p.get("one_dim"):
            kwargs = dict(dim=draw(st.integers(-len(shape), len(shape) - 1)))
        else:
            dims = draw(st.one_of(st.none(), st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True)))
            if dims is not None and draw(st.booleans()):
                dims = [d - len(shape) for d in dims]  # negative dims
            kwargs = dict(dim=dims)
            count = int(np.prod(shape if dims is None else [shape[d] for d in dims]))
            assume(count >= p.get("min_count", 1))
        if p.get("keepdim", True):
            kwargs["keepdim"] = draw(st.booleans())
        return [shape], (), kwargs, extra
    if kind == "matmul":
        if kernel:
            a, b = draw(st.sampled_from(MATMUL_KERNEL_SHAPES))
            if len(b) >= 2 and draw(st.booleans()):
                extra["transposed"] = (1,)  # b goes in as a transposed view (gemm's TRANS flag)
            return [a, b], (), {}, extra
        batch = draw(st.lists(st.integers(1, 3), max_size=2))
        n, k, m = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
        vector = draw(st.sampled_from(["none", "left", "right"]))
        a = (k,) if vector == "left" else (*batch, n, k)
        b = (k,) if vector == "right" else (*batch[1:], k, m)
        return [a, b], (), {}, extra
    if kind == "linear":
        if kernel:
            n, fin, fout = draw(st.integers(1, 70)), draw(st.integers(1, 40)), draw(st.integers(1, 70))
            return [(n, fin), (fout, fin), (fout,)], (), {}, extra
        lead = draw(st.lists(st.integers(1, 3), min_size=1, max_size=2))
        fin, fout = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        return [(*lead, fin), (fout, fin)] + ([(fout,)] if draw(st.booleans()) else []), (), {}, extra
    if kind == "reshape":
        shape = draw(small_shapes)
        target = draw(st.sampled_from([(-1,), shape[::-1], (1, *shape), (int(np.prod(shape)), 1)]))
        return [shape], target, {}, extra
    if kind == "permute":
        shape = draw(small_shapes)
        return [shape], tuple(draw(st.permutations(range(len(shape))))), {}, extra
    if kind == "transpose":
        shape = draw(small_shapes)
        dims = st.integers(-len(shape), len(shape) - 1)
        return [shape], (draw(dims), draw(dims)), {}, extra
    if kind == "unflatten":
        shape = draw(small_shapes)
        dim = draw(st.integers(-len(shape), len(shape) - 1))
        n = shape[dim]
        sizes = draw(st.sampled_from([(n,), (n, 1), (1, n), (-1, 1)] + ([(2, n // 2), (-1, 2)] if n % 2 == 0 else [])))
        return [shape], (dim, sizes), {}, extra
    if kind == "unsqueeze":
        shape = draw(small_shapes)
        return [shape], (), dict(dim=draw(st.integers(-len(shape) - 1, len(shape)))), extra
    if kind == "squeeze":
        shape = list(draw(small_shapes))
        dim = draw(st.integers(-len(shape), len(shape) - 1))
        shape[dim] = 1
        return [tuple(shape)], (), dict(dim=dim), extra
    if kind == "flatten":
        shape = draw(small_shapes)
        start = draw(st.integers(0, len(shape) - 1))
        end = draw(st.integers(start, len(shape) - 1))
        return [shape], (), dict(start_dim=start, end_dim=end - len(shape) if draw(st.booleans()) else end), extra
    if kind == "pad":
        shape = draw(small_shapes)
        pads = tuple(draw(st.integers(0, 2)) for _ in range(2 * draw(st.integers(1, len(shape)))))
        return [shape], (pads,), {}, extra
    if kind == "index":
        shape = draw(small_shapes)
        rule = draw(st.sampled_from(["slice", "ellipsis", "list", "mask"]))
        if rule == "slice":
            index = slice(draw(st.integers(0, shape[0] - 1)), None, draw(st.integers(1, 2)))
        elif rule == "ellipsis":
            index = (Ellipsis, -1)
        elif rule == "list":  # repeats allowed
            index = draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=5))
        else:
            index = np.random.default_rng(draw(seeds)).random(shape) > 0.3
        return [shape], (index,), {}, extra
    if kind == "concat":
        shape, count = draw(small_shapes), draw(st.integers(1, 3))
        dim = draw(st.integers(0, len(shape) - 1))
        extra["packed"] = True
        if p.get("same"):
            return [shape] * count, (), dict(dim=dim), extra
        shapes = [tuple(draw(st.integers(1, 3)) if d == dim else n for d, n in enumerate(shape)) for _ in range(count)]
        return shapes, (), dict(dim=dim), extra
    if kind in ("conv", "conv_transpose"):
        case = draw(conv_case(transpose=kind == "conv_transpose"))
        x = (case["n"], case["c"], case["h"], case["w"])
        w = (case["o"], case["c"], *case["k"]) if kind == "conv" else (case["c"], case["o"], *case["k"])
        bias = kernel or draw(st.booleans())
        extra["grads"] = [kernel or draw(st.booleans()), True] + [True] * bias  # first layers need no gx
        kwargs = {k: case[k] for k in ("stride", "padding", "output_padding") if k in case}
        return [x, w] + [(case["o"],)] * bias, () if bias else (None,), kwargs, extra
    if kind == "pool":
        case = draw(pool_case())
        return [case["shape"]], (case["k"], case["stride"], case["padding"]), {}, extra
    if kind == "upsample":
        big = 7 if kernel else 5
        h, w = draw(st.integers(1, big)), draw(st.integers(1, big))
        scale = draw(st.sampled_from([1, 2, 3, 1.5, 0.5, (2, 3)] + ([2.5] if kernel else [])))
        factors = scale if isinstance(scale, tuple) else (scale, scale)
        assume(int(h * factors[0]) >= 1 and int(w * factors[1]) >= 1)
        if info.inputs.kwargs.get("mode") == "bilinear" and not kernel:
            scale = draw(st.sampled_from([2, 3, 1.5]))  # the loops' scalar factors, as PyTorch's
        return [(2, 3 if kernel else 2, h, w)], (), dict(scale_factor=scale), extra
    if kind == "loss":
        shape = (draw(st.integers(1, 3000)),) if kernel else draw(small_shapes)
        extra["grads"] = [True, not kernel and draw(st.booleans())]
        return [shape, shape], (), {}, extra
    if kind == "cross_entropy":
        n, c = draw(st.integers(1, 4)), draw(st.integers(2, 5))
        labels = np.random.default_rng(draw(seeds)).integers(0, c, n)
        return [(n, c)], (labels,), {}, extra
    raise ValueError(f"{info.name}: no shape rule for inputs of kind {info.inputs.kind!r} in tests/strategies.py")


@st.composite
def samples(draw, info: OpInfo, smooth: bool = True, kernel: bool = False) -> Sample:
    """A sample of info's inputs (float64 values). smooth: for finite differences (values away from
    kinks and ties); kernel: the larger shapes of the kernel checks (partial tiles, long losses)."""
    shapes, args, kwargs, extra = draw(_layout(info, kernel))
    kwargs = {**info.inputs.kwargs, **kwargs}
    for name, choices in info.inputs.choices.items():
        kwargs[name] = draw(st.sampled_from(choices))
    rng = np.random.default_rng(draw(seeds))
    arrays = [values(rng, s, info.inputs.domain_of(k), smooth, info.inputs.kinks) for k, s in enumerate(shapes)]
    if info.inputs.kind == "clamp_tensor":
        arrays = _clamp_bounds(arrays, extra["kw_inputs"], rng, smooth)
    return Sample(arrays, tuple(args), kwargs, **extra)


def _clamp_bounds(arrays, bounds, rng, smooth):
    """Bounds around 0 (a max above or below the min too); smooth: x away from both bounds, else some
    x exactly at a bound (a tie: the gradient goes to x there, as PyTorch's)."""
    x, named = arrays[0], dict(zip(bounds, arrays[1:]))
    if "min" in named:
        named["min"] = named["min"] * 0.3 - 0.3
    if "max" in named:
        named["max"] = named["max"] * 0.3 + 0.3
    for bound in named.values():
        full = np.broadcast_to(bound, x.shape)
        if smooth:
            x = np.where(np.abs(x - full) < KINK_GAP, full + 2 * KINK_GAP, x)
        else:
            x = np.where(rng.random(x.shape) < 0.3, full, x)
    if smooth and len(named) == 2:  # a shift past one bound may land near the other
        for bound in named.values():
            assume(np.all(np.abs(x - np.broadcast_to(bound, x.shape)) >= KINK_GAP / 2))
    return [x, *named.values()]
