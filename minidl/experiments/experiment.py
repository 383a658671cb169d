"""What every lab experiment shares: its data, training loop with atomic checkpoints and --resume
(Experiment.fit), the metrics table and the JSON file; and `example`, which makes an example's
work a function of its options and a command line.

    @example(__doc__, epochs=3, options=options)        # examples/dae_mnist.py
    def dae_mnist(exp: Experiment) -> dict:
        losses, scores = exp.fit("model_d", model, opt, step, [exp.data.x_train])   # resumable
        exp.table([...])
        return exp.finish({"test_mse": ...})

    dae_mnist(epochs=1, levels=[0.3])                   # from Python: a Run (metrics, figures)
    run(dae_mnist.main)                                 # from the shell: python examples/dae_mnist.py --epochs 1
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import math
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import backend, data, serialization
from ..autograd.mode import no_grad
from ..autograd.tensor import Tensor
from ..capture import CapturedStep
from ..nn import Flatten, Module
from ..nn.functional import cross_entropy
from ..optim import Adam, Optimizer
from .models import Classifier
from .options import (
    NOT_SETTINGS,
    CannotResume,
    ExperimentError,
    _raising_usage_errors,
    command_line,
    command_words,
)
from .run_folder import (
    _LAST_RUN,
    MANIFEST,
    OWN,
    RUN_FILES,
    _writable_folder,
    earlier_files,
    lock_run_folder,
    strict_json,
)
from .training import (
    BestWeights,
    Progress,
    Within,
    checkpoint_seconds,
    converged,
    fingerprint,
    generator_states,
    train_on_batch,
    where_kept,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class Experiment:
    def __init__(self, args: argparse.Namespace, name: str):
        self.args, self.name = args, name
        self.device = backend.resolve_device(args.device)
        if getattr(args, "capture", False) and self.device != "cuda":
            raise ExperimentError(f"--capture records CUDA graphs: it needs --device cuda, not {self.device}")
        self.out = Path(args.out) if args.out else Path("runs") / name
        self.settings = {"example": name} | {k: str(v) for k, v in sorted(vars(args).items()) if k not in NOT_SETTINGS}
        self.kept: dict[str, str | None] = {}  # the checkpoints on disk: tag -> where they are (where_kept)
        _LAST_RUN[:] = [self.out, self.kept]  # what a Ctrl-C says was kept (kept_message)
        self._prepare_outputs()
        self.metrics: dict = {}
        self.seconds_per_epoch: dict[str, float] = {}
        self.fits: dict[str, dict] = {}  # per fit with patience: epochs run, best epoch, converged
        self._data: data.MNIST | None = None
        self._on_device: dict[int, tuple] = {}
        backend.manual_seed(args.seed)

    def _prepare_outputs(self) -> None:
        """Before any work: --out is this run's alone (locked), --out and --json can be written, --json is
        none of the run's own files, no earlier run is overwritten by accident, --resume has a checkpoint
        to continue, and a run that starts afresh first removes what the earlier run of this example
        wrote there (its manifest), never another example's files."""
        if self.out.exists() and not self.out.is_dir():
            raise ExperimentError(f"--out {self.out} is a file; give a folder")
        _writable_folder(self.out, f"the --out folder {self.out}")
        self._lock = lock_run_folder(self.out)
        try:
            self._check_outputs()
        except BaseException:  # refused: the folder is free again at once
            self.close()
            raise

    def _check_outputs(self) -> None:
        if self.args.json is not None:
            if Path(self.args.json).is_dir():
                raise ExperimentError(f"--json {self.args.json} is a folder; give a file name")
            if Path(self.args.json).name.endswith(RUN_FILES) or Path(self.args.json).name.startswith(OWN):
                raise ExperimentError(
                    f"--json {self.args.json} would replace one of the run's own files (checkpoints "
                    f"{RUN_FILES[0]}, figures {RUN_FILES[1]}); give a .json file"
                )
            _writable_folder(Path(self.args.json).parent, f"the folder of --json {self.args.json}")
        self.manifest = self.out / MANIFEST.format(name=self.name)
        earlier = earlier_files(self.out, self.manifest)
        checkpoints = [n for n in earlier if n.endswith(RUN_FILES[0])]
        if self.args.resume:
            if not checkpoints:
                raise CannotResume(
                    f"--resume: {self.out} holds no checkpoint of {self.name} to continue (none is written before "
                    "the end of a model's first epoch); run without --resume to start it"
                )
            self.written = earlier
            self.kept.update((n.removesuffix(RUN_FILES[0]), None) for n in checkpoints)  # epochs: when loaded
            return
        if checkpoints and not getattr(self.args, "overwrite", False):
            raise ExperimentError(
                f"{self.out} holds the checkpoints of an earlier run ({', '.join(checkpoints)}); add --resume to "
                "continue it, --overwrite to start afresh, or give another --out"
            )
        for name in earlier:  # --overwrite, or the figures of a run stopped before its first checkpoint
            (self.out / name).unlink(missing_ok=True)
        self.written = []
        self._write_manifest()

    def _record(self, path: Path) -> Path:
        """Add path (a file of this run in --out) to the manifest before it is written; returns it."""
        if path.name not in self.written:
            self.written.append(path.name)
            self._write_manifest()
        return path

    def _write_manifest(self) -> None:
        text = json.dumps({"example": self.name, "files": self.written}, indent=1)
        serialization.atomic_write(self.manifest, lambda f: f.write(text.encode()))

    def close(self) -> None:
        """The run is over: its folder is unlocked (another run, in this process or another, may take it)."""
        self._lock.close()

    @property
    def data(self) -> data.MNIST:
        """MNIST, the training set cut to --limit images and the test set to --test-limit."""
        if self._data is None:
            mnist = data.load_mnist(self.args.data)
            if self.args.limit:
                mnist.x_train, mnist.y_train = mnist.x_train[: self.args.limit], mnist.y_train[: self.args.limit]
            if getattr(self.args, "test_limit", None):
                mnist.x_test, mnist.y_test = mnist.x_test[: self.args.test_limit], mnist.y_test[: self.args.test_limit]
            self._data = mnist
        return self._data

    def rng(self, *stream: int) -> np.random.Generator:
        """A host generator fixed by the seed and `stream` (e.g. an epoch number)."""
        return np.random.default_rng([self.args.seed, *stream])

    def on_device(self, array: np.ndarray):
        """A host array's copy on the experiment's device, uploaded once and then reused."""
        if id(array) not in self._on_device:
            self._on_device[id(array)] = (array, backend.move(array, self.device))  # keeps array, so its id
        return self._on_device[id(array)][1]

    # ------------------------------------------------------------- training
    def fit(
        self,
        tag: str,
        model: Module,
        optimizer: Optimizer,
        step: Callable[..., Tensor],
        arrays: Sequence[np.ndarray],
        epochs: int | None = None,
        evaluate: Callable[[], float] | None = None,
        patience: int | None = None,
    ) -> tuple[list[float], list[float]]:
        """Train for `epochs` (default --epochs): step(*batch_tensors, rng) returns the loss of one batch;
        rng is the device's generator (backend.generator), reseeded every epoch, which dropout
        draws from too. The data set goes to the device once; a step reads nothing back to the
        host except when the progress bar draws. After each epoch evaluate() (if given) is
        recorded, and a checkpoint is written atomically; within an epoch one is written every
        checkpoint_seconds() of training too (Within: the batches done, their losses, the
        generators' states); with --resume the run continues from it, at its batch, bit for bit.
        Returns the mean training loss and the evaluation of every epoch.
        With `patience`, evaluate() is a validation loss (lower is better, never the test set):
        training stops once it has converged (see `converged`), at most after `epochs`, and the
        model keeps the weights of its best epoch. self.fits[tag] says how it went.
        With --capture each step is replayed from a CUDA graph (minidl.capture); the graph draws
        from the generator it recorded, so the generator is seeded once, when training starts,
        not every epoch: the run repeats from its start, but a resumed one draws other noise."""
        epochs = self.args.epochs if epochs is None else epochs
        if patience is not None and evaluate is None:
            raise ValueError("fit: patience stops training on evaluate()'s validation loss; pass evaluate too")
        path = self.out / f"{tag}.ckpt.npz"
        history: list[float] = []
        scores: list[float] = []
        best = BestWeights(model) if patience is not None else None
        total = data.num_batches(len(arrays[0]), self.args.batch_size)
        within: Within | None = None  # where a checkpoint written within an epoch stopped
        if self.args.resume and path.exists():
            history, scores, within = self.load_checkpoint(path, model, optimizer, best)
            self.kept[tag] = where_kept(len(history), within, total)
            if len(history) > epochs:
                raise CannotResume(
                    f"{path} holds {len(history)} epochs of {tag}, more than the {epochs} asked for: resume with "
                    f"--epochs {len(history)} or more, or start afresh with --overwrite"
                )
            print(f"{tag}: resumed from {path} {self.kept[tag]}")
        every = checkpoint_seconds()
        on_device = [self.on_device(a) for a in arrays]
        capture = getattr(self.args, "capture", False)
        train = functools.partial(train_on_batch, step, optimizer)
        if capture:
            train = CapturedStep(train, optimizer)
        first = len(history)
        for epoch in range(first, epochs):
            if patience is not None and converged(scores, patience):
                break
            model.train()
            if epoch == first or not capture:
                backend.manual_seed(self.args.seed * 100_003 + epoch)  # noise and dropout repeat on resume
            noise = backend.generator(self.device)
            progress = Progress(total, f"{tag} epoch {epoch + 1}/{epochs}")
            done = 0
            if within is not None:  # the state after the batches that were done, then the rest of the epoch
                done = within.batches
                for device, state in within.generators.items():
                    backend.generator(device).bit_generator.state = state
                progress.resume([backend.move(loss, self.device) for loss in within.losses])
                within = None
            start = saved = time.perf_counter()
            batches = data.batches(*on_device, batch_size=self.args.batch_size, rng=self.rng(epoch),
                                   device=self.device)  # fmt: skip
            for k, batch in enumerate(batches):
                if k < done:
                    continue
                progress.update(train(*batch, noise))
                if k + 1 < total and not capture and time.perf_counter() - saved >= every:
                    states = generator_states()
                    if states is not None:  # (CuPy's generators do not give theirs: epoch ends only)
                        now = Within(k + 1, progress.host_losses(), states)
                        self.save_checkpoint(path, model, optimizer, history, scores, within=now, best=best)
                        self.kept[tag] = where_kept(len(history), now, total)
                    saved = time.perf_counter()
            history.append(progress.mean_loss())
            self.seconds_per_epoch[tag] = time.perf_counter() - start
            if evaluate is not None:
                model.eval()
                scores.append(float(evaluate()))
                if best is not None and scores[-1] <= min(scores):
                    best.keep(len(scores))
            self.save_checkpoint(path, model, optimizer, history, scores, best=best)
            self.kept[tag] = where_kept(len(history), None, total)
        model.eval()
        if best is not None:
            best.restore()
            self.fits[tag] = dict(epochs=len(history), best_epoch=best.epoch, converged=converged(scores, patience))
        # what follows draws from a state fixed by (seed, tag, epochs), whether or not the epochs ran
        # in this process: a run resumed after this model equals the uninterrupted one
        backend.manual_seed(zlib.crc32(f"{self.args.seed}:{tag}:{epochs}".encode()))
        return history, scores

    def save_checkpoint(self, path: Path, model: Module, optimizer: Optimizer, history, scores,
                        within: Within | None = None, best: BestWeights | None = None) -> None:  # fmt: skip
        """The model, the optimizer, the epochs done (their losses and scores), the best epoch's weights
        (for a fit with patience) and, for a checkpoint written within an epoch, where it is (Within),
        atomically."""
        self._record(path)
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "history": np.asarray(history, dtype=np.float64),
            "scores": np.asarray(scores, dtype=np.float64),
            "fingerprint": np.array(fingerprint(model)),
            "settings": np.array(json.dumps(self.settings, sort_keys=True)),
        }
        if best is not None and best.epoch:
            state |= {"best_model": best.state, "best_epoch": np.array(best.epoch)}
        if within is not None:
            state["within"] = {
                "batches": within.batches,
                "losses": np.stack(within.losses) if within.losses else np.zeros(0),
                "generators": np.array(json.dumps(within.generators)),
            }
        serialization.save(state, path)

    def load_checkpoint(self, path: Path, model: Module, optimizer: Optimizer, best: BestWeights | None = None
                        ) -> tuple[list[float], list[float], Within | None]:  # fmt: skip
        """Restore a checkpoint of this model made with these settings (anything else is refused):
        the losses and scores of the epochs done, and where within the next one it stopped (or None);
        a fit with patience gets its best epoch's weights back into `best`."""
        state = serialization.load(path)
        found = str(state.get("fingerprint", ""))
        if found != fingerprint(model):
            raise ExperimentError(
                f"{path} is a checkpoint of another model:\n  checkpoint: {found}\n  this model: {fingerprint(model)}\n"
                "use another --out, or --overwrite to start afresh"
            )
        saved = json.loads(str(state.get("settings", "{}")))
        differ = [f"--{k.replace('_', '-')}: checkpoint {saved.get(k)}, this run {v}" for k, v in self.settings.items()
                  if saved.get(k) != v]  # fmt: skip
        if differ:
            raise CannotResume(
                f"{path} was made with other settings:\n  " + "\n  ".join(differ) + "\n"
                "resume with the checkpoint's settings, or --overwrite to start afresh"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if best is not None and "best_model" in state:
            best.state, best.epoch = state["best_model"], int(state["best_epoch"])
        history = [float(v) for v in np.atleast_1d(state["history"])]
        scores = [float(v) for v in np.atleast_1d(state["scores"])]
        if "within" not in state:
            return history, scores, None
        within = state["within"]
        generators = json.loads(str(within["generators"]))
        return history, scores, Within(int(within["batches"]), [np.asarray(v) for v in within["losses"]], generators)

    def digit_judge(self, epochs: int = 2) -> Module:
        """A digit classifier (784-256-10, ReLU, trained on the training digits for `epochs`, resumable
        as any fit): the judge that latent.plausibility asks whether generated images are digits."""
        judge = Classifier(Flatten(), 784, hidden=256, device=self.device)

        def step(x, y, rng):
            return cross_entropy(judge(x), y)

        self.fit("judge", judge, Adam(judge.parameters(), lr=1e-3), step, [self.data.x_train, self.data.y_train],
                 epochs=epochs)  # fmt: skip
        return judge

    # ------------------------------------------------------------ evaluation
    def evaluate(self, fn: Callable[[Tensor], Tensor], x: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """fn applied to x in batches without recording a graph; a host array."""
        outputs = []
        with no_grad():
            for (batch,) in data.batches(x, batch_size=batch_size, shuffle=False, device=self.device):
                outputs.append(fn(batch).numpy())
        return np.concatenate(outputs)

    # ---------------------------------------------------------------- output
    def table(self, headers: Sequence[str], rows: Iterable[Sequence]) -> str:
        """Print rows as an aligned table (numbers with 4 significant digits) and return it."""
        cells = [[_cell(v) for v in row] for row in rows]
        widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)), "  ".join("-" * w for w in widths)]
        lines += ["  ".join(c.rjust(w) if _is_number(c) else c.ljust(w) for c, w in zip(r, widths)) for r in cells]
        text = "\n".join(lines)
        print(text)
        return text

    def figure(self, name: str) -> Path:
        """Where the figure `name` goes (recorded in the run's manifest)."""
        return self._record(self.out / name)

    def finish(self, metrics: dict) -> dict:
        """Record the metrics (and the seconds per epoch of each model), write --json, say where figures are."""
        self.metrics.update(metrics)
        self.metrics.setdefault("seconds_per_epoch", dict(self.seconds_per_epoch))
        self.metrics.update(device=self.device, seed=self.args.seed, epochs=self.args.epochs)
        if self.args.json:
            text = strict_json(self.metrics)
            serialization.atomic_write(self.args.json, lambda f: f.write(text.encode()))
        print(f"figures and checkpoints in {self.out}/")
        return self.metrics


@dataclass
class Run:
    """What an example called from Python left: its metrics (what --json writes), its folder, the
    matplotlib figures it drew and the PNG files it wrote of them, both by name ("loss_curves")."""

    name: str
    metrics: dict
    out: Path
    figures: dict[str, Figure] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    def show(self, *names: str) -> None:
        """Display the figures (all, or those named) inline in Jupyter; elsewhere print where they are."""
        unknown = [n for n in names if n not in self.files]
        if unknown:
            raise KeyError(f"{self.name} drew no figure {unknown}; it drew {sorted(self.files)}")
        chosen = [self.files[n] for n in names] if names else list(self.files.values())
        try:
            from IPython.display import Image, display
        except ImportError:
            print("\n".join(str(p) for p in chosen))
            return
        for path in chosen:
            display(Image(filename=str(path)))


Work = Callable[[Experiment], dict]


def example(doc: str, epochs: int, options: Callable | None = None, check: Callable | None = None
            ) -> Callable[[Work], Callable[..., Run]]:  # fmt: skip
    """Declare examples/<name>.py's work, `def <name>(exp: Experiment) -> dict` returning
    exp.finish(...)'s metrics, and its options: the common ones (epochs defaulting to `epochs`),
    options(parser) adding its own, check(args) saying what is wrong with their combination (or None).

    The declared function takes the options as keyword arguments (x_y=3 is --x-y 3, resume=True is
    --resume, sizes=[784, 64] is --sizes 784 64), validates them with the same parser, runs the work
    in this process and returns a Run; a bad option is an ExperimentError with argparse's message.
    Its .main(argv=None) is the command line: it parses sys.argv (a bad option exits with status 2)
    and runs the same work. Either way the run folder is locked, never overwritten by accident, and
    resume=True / --resume continues it."""

    def declare(work: Work) -> Callable[..., Run]:
        name = Path(work.__code__.co_filename).stem
        if work.__name__ != name:
            raise TypeError(f"the work of {name}.py is named {work.__name__}; name it {name}, as its file")
        parser = command_line(doc, epochs, prog=f"{name}.py")
        if options:
            options(parser)
        actions = [a for a in parser._actions if a.option_strings and a.dest != "help"]
        signature = inspect.Signature(
            [inspect.Parameter(a.dest, inspect.Parameter.KEYWORD_ONLY, default=a.default) for a in actions],
            return_annotation=Run,
        )

        def start(args: argparse.Namespace) -> Experiment:
            problem = check(args) if check else None
            if problem:
                parser.error(problem)
            try:
                return Experiment(args, name)
            except (ExperimentError, backend.DeviceError, backend.DeviceUnavailable) as e:
                parser.refuse(e)

        def main(argv: Sequence[str] | None = None) -> None:
            exp = start(parser.parse_args(argv))
            try:
                work(exp)
            finally:
                exp.close()

        def function(**keywords) -> Run:
            signature.bind(**keywords)  # a misspelt option is a TypeError naming it, before anything runs
            with _raising_usage_errors():
                exp = start(parser.parse_args(command_words(keywords)))
            from .figures import DRAWN  # matplotlib: imported by runs from Python, not by the engine's users

            drawn: list = []
            recording = DRAWN.set(drawn)
            try:
                metrics = work(exp)
            finally:
                DRAWN.reset(recording)
                exp.close()
            if not isinstance(metrics, dict):
                raise TypeError(f"{name} returned {type(metrics).__name__}; its work returns exp.finish(...)")
            return Run(name, metrics, exp.out, {p.stem: fig for p, fig in drawn}, {p.stem: p for p, _ in drawn})

        helps = [f"  {a.dest}={a.default!r}: {(a.help or '').replace('%(default)s', str(a.default))}" for a in actions]
        function.__name__ = function.__qualname__ = name
        function.__module__ = work.__module__
        function.__signature__ = signature
        function.__doc__ = f"{doc.strip()}\n\nOptions (keyword=default: what it does):\n" + "\n".join(helps)
        function.main, function.parser = main, parser
        return function

    return declare


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """The mean squared difference of two host arrays of one shape (images: a reconstruction and its target)."""
    return float(((a - b) ** 2).mean())


def psnr(mse: float) -> float:
    """Peak signal-to-noise ratio of images in [0, 1]: 10 log10(1 / MSE)."""
    return 10 * math.log10(1 / mse) if mse > 0 else math.inf


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
