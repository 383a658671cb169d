"""The lab's figures as PNG files: image rows, strips, frames, scatter plots, curves. Each is a
matplotlib Figure of its own, not pyplot's, so drawing one changes no backend and no state:
a Jupyter kernel's inline plots keep working beside it."""

from __future__ import annotations

import contextvars
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import matplotlib.colors
import matplotlib.ticker
import numpy as np
from matplotlib.figure import Figure


def _show(ax, image) -> None:
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] in (1, 3):
        image = image.transpose(1, 2, 0)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    ax.imshow(np.clip(image, 0, 1), cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])


def ink(colour) -> str:
    """The text colour readable on a cell of `colour` (any matplotlib colour, e.g. a colormap's RGBA):
    black where the cell's relative luminance L = 0.2126 R + 0.7152 G + 0.0722 B (linear sRGB) is above
    0.179, where black and white text contrast with it equally (WCAG's contrast ratio), white below."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in matplotlib.colors.to_rgb(colour)]
    return "black" if np.dot([0.2126, 0.7152, 0.0722], linear) > 0.179 else "white"


DRAWN: contextvars.ContextVar[list | None] = contextvars.ContextVar("minidl_drawn", default=None)  # see _save


def _save(fig, path: Path) -> Path:
    """Write the figure as a PNG; while an example runs from Python (DRAWN holds a list), also keep
    (path, figure) there, so that the run gives back the matplotlib figures themselves. A figure
    without a title is refused: each says what it shows and the settings that matter."""
    path = Path(path)
    titles = [fig._suptitle.get_text() if fig._suptitle else ""] + [ax.get_title() for ax in fig.axes]
    if not any(t.strip() for t in titles):
        raise ValueError(f"{path.name}: a figure says what it shows and the settings that matter: give it a title")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    drawn = DRAWN.get()
    if drawn is not None:
        drawn.append((path, fig))
    return path


def _subplots(figsize, rows: int = 1, cols: int = 1, squeeze: bool = True):
    """A figure of its own (not pyplot's: no backend, no global state, nothing to close) and its axes."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(rows, cols, squeeze=squeeze)


def image_rows(rows: Mapping[str, np.ndarray], path: Path, title: str = "", column_titles=None,
               captions: Mapping[str, Sequence[str]] | None = None) -> Path:  # fmt: skip
    """One labelled row per entry: rows[label] is (N, C, H, W) with values in [0, 1]; captions[label],
    if given, has a line of text under each image of that row."""
    names = list(rows)
    n = max(len(v) for v in rows.values())
    fig, axes = _subplots((1.1 * n + 1.2, 1.15 * len(names) + 0.4), len(names), n, squeeze=False)
    for r, name in enumerate(names):
        for c in range(n):
            ax = axes[r, c]
            if c < len(rows[name]):
                _show(ax, rows[name][c])
                if captions and name in captions:
                    ax.set_xlabel(captions[name][c], fontsize=7)
            else:
                ax.axis("off")
            if c == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
            if r == 0 and column_titles is not None:
                ax.set_title(str(column_titles[c]), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def scatter_codes(codes: np.ndarray, labels: np.ndarray, path: Path, title: str = "") -> Path:
    """2-D codes coloured by class, with a legend."""
    fig, ax = _subplots((6.4, 5.6))
    cmap = matplotlib.colormaps["tab10"]
    for k in range(10):
        pts = codes[labels == k]
        ax.scatter(pts[:, 0], pts[:, 1], s=3, color=cmap(k), label=str(k), alpha=0.6)
    ax.legend(markerscale=4, title="digit", loc="best", fontsize=8)
    ax.set_xlabel("code 1")
    ax.set_ylabel("code 2")
    ax.set_title(title)
    return _save(fig, path)


def image_grid(images: np.ndarray, path: Path, title: str = "", xs: Sequence[float] | None = None,
               ys: Sequence[float] | None = None, xlabel: str = "", ylabel: str = "") -> Path:  # fmt: skip
    """images (R, C, 1, H, W) as one R×C mosaic; with xs (C,) and ys (R,), each column and row is
    marked with its value on the axes (e.g. the code a decoded image came from)."""
    r, c = images.shape[:2]
    h, w = images.shape[-2:]
    mosaic = images[:, :, 0].transpose(0, 2, 1, 3).reshape(r * h, c * w)
    fig, ax = _subplots((6, 6))
    _show(ax, mosaic)
    for values, size, set_ticks, set_label, label in [(xs, w, ax.set_xticks, ax.set_xlabel, xlabel),
                                                      (ys, h, ax.set_yticks, ax.set_ylabel, ylabel)]:  # fmt: skip
        if values is not None:
            shown = np.unique(np.linspace(0, len(values) - 1, min(len(values), 5)).astype(int))
            set_ticks(shown * size + size / 2 - 0.5, [f"{values[i]:.2g}" for i in shown], fontsize=8)
            set_label(label)
    ax.set_title(title)
    return _save(fig, path)


def curves(series: Mapping[str, Sequence[float]], path: Path, xlabel: str, ylabel: str, title: str = "",
           x: Sequence | None = None, logx: bool = False, logy: bool = False) -> Path:  # fmt: skip
    """Lines, one per entry of series (e.g. loss per epoch), against x (default 1, 2, ...); an entry
    that is an (xs, ys) pair has x values of its own."""
    fig, ax = _subplots((6.4, 4.2))
    own = all(isinstance(v, tuple) and len(v) == 2 for v in series.values())
    for name, ys in series.items():
        xs = x if x is not None else np.arange(1, len(ys) + 1)
        if own:
            xs, ys = ys
        ax.plot(xs, ys, marker="o" if len(ys) <= 60 else None, ms=3, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if x is None and not own:  # epochs: whole numbers only
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)  # beside: never on a line
    ax.set_title(title)
    return _save(fig, path)


def vector_field(starts: np.ndarray, arrows: np.ndarray, curve: np.ndarray, path: Path, title: str = "",
                 samples: np.ndarray | None = None) -> Path:  # fmt: skip
    """Arrows (M, 2) drawn from the points starts (M, 2), beside a curve (K, 2) drawn as a line and
    optional training samples (S, 2) as dots; equal axis scales, so that directions are true."""
    fig, ax = _subplots((6.4, 6.0))
    if samples is not None:
        ax.scatter(samples[:, 0], samples[:, 1], s=2, color="0.7", label="training points")
    ax.quiver(starts[:, 0], starts[:, 1], arrows[:, 0], arrows[:, 1], angles="xy", scale_units="xy", scale=1,
              width=0.003, color="tab:blue", label="r(x) - x")  # fmt: skip
    ax.plot(curve[:, 0], curve[:, 1], color="tab:red", lw=2, label="the data manifold")
    ax.set_aspect("equal")
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(title)
    return _save(fig, path)


def confusion(counts: np.ndarray, path: Path, row_labels: Sequence[str], xlabel: str, ylabel: str,
              title: str = "") -> Path:  # fmt: skip
    """A matrix of counts (R, C) as a heat map with each count written in its cell; columns 0 ... C-1."""
    fig, ax = _subplots((0.55 * counts.shape[1] + 3.2, 0.45 * counts.shape[0] + 1.4))
    ax.imshow(counts, cmap="Blues")
    for (r, c), v in np.ndenumerate(counts):
        ax.text(c, r, str(v), ha="center", va="center", fontsize=7,
                color="white" if v > counts.max() / 2 else "black")  # fmt: skip
    ax.set_xticks(range(counts.shape[1]))
    ax.set_yticks(range(counts.shape[0]), list(row_labels), fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)
