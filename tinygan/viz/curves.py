"""Loss curves: matplotlib when it is installed (the ``plot`` extra), else a plain Pillow drawing."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from tinygan.io import atomic_write

_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or y.size < window:
        return y
    kernel = np.ones(window) / window
    return np.convolve(y, kernel, mode="valid")


def save_loss_curves(steps: Sequence[float], series: Mapping[str, Sequence[float]], path,
                     title: str = "Losses during training", smooth: int = 1, xlabel: str = "iteration",
                     ylabel: str = "loss", logy: bool = False) -> Path:
    """Plot each named series against ``steps`` (as the DCGAN tutorial's G and D loss figure).

    ``logy``: a logarithmic y axis (matplotlib only), for series that span
    decades, such as Frechet distances during training.  With more than
    six series the legend goes beside the axes, where it hides no line, and
    the lines after the tenth are dashed (matplotlib has ten colours).
    Writes a PNG atomically (:func:`tinygan.io.atomic_write`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.asarray(steps, dtype=np.float64)
    plt = _pyplot()
    with atomic_write(path) as f:
        if plt is None:
            _pillow_plot(x, series, f, title, smooth)
        else:
            _matplotlib_plot(plt, x, series, f, title, smooth, xlabel, ylabel, logy)
    return path


def _matplotlib_plot(plt, x, series, f, title, smooth, xlabel="iteration", ylabel="loss", logy=False):
    """The figure with matplotlib, as a PNG into the open binary file ``f``."""
    many = len(series) > 6
    fig, ax = plt.subplots(figsize=(11, 5) if many else (8, 4.5), dpi=100)
    try:
        for i, (name, y) in enumerate(series.items()):
            y = _smooth(np.asarray(y, dtype=np.float64), smooth)
            ax.plot(x[len(x) - len(y):], y, label=name, linewidth=1, linestyle="-" if i < 10 else "--")
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        if many:
            ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
        else:
            ax.legend()
        fig.tight_layout()
        fig.savefig(f, format="png")
    finally:
        plt.close(fig)


def _pyplot():
    """matplotlib.pyplot on the Agg backend, or None when matplotlib is not installed (or broken)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:
        return None
    return plt


def _pillow_plot(x, series, f, title, smooth, size=(800, 450), margin=50):
    """The same figure drawn with Pillow, as a PNG into the open binary file ``f``."""
    from PIL import Image, ImageDraw
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    ys = {k: _smooth(np.asarray(v, dtype=np.float64), smooth) for k, v in series.items()}
    finite = np.concatenate([v[np.isfinite(v)] for v in ys.values()] or [np.zeros(1)])
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1.0
    x0, x1 = (float(x.min()), float(x.max())) if x.size else (0.0, 1.0)
    x1 = x1 if x1 > x0 else x0 + 1.0
    w, h = size[0] - 2 * margin, size[1] - 2 * margin
    draw.rectangle([margin, margin, margin + w, margin + h], outline="black")
    draw.text((margin, 10), title, fill="black")
    draw.text((5, margin), f"{hi:.3g}", fill="black")
    draw.text((5, margin + h - 10), f"{lo:.3g}", fill="black")
    for i, (name, y) in enumerate(ys.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        xs = x[len(x) - len(y):]
        pts = [(margin + (a - x0) / (x1 - x0) * w, margin + h - (b - lo) / (hi - lo) * h)
               for a, b in zip(xs, y) if np.isfinite(b)]
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=1)
        draw.text((margin + w - 120, margin + 10 + 15 * i), name, fill=colour)
    img.save(f, format="PNG")
