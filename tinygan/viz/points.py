"""Scatter plots of real vs generated points for the 1-D and 2-D toy distributions (Pillow only)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from PIL import Image, ImageDraw

from tinygan.io import atomic_write


def save_points_plot(real: np.ndarray | None, fake: np.ndarray, path, title: str = "", size: int = 480,
                     extent: float | None = None, field=None) -> Path:
    """Real points (blue) and generated points (red) on one square canvas.

    ``real`` and ``fake`` are (N, d) (or (N,) for 1-D data); ``real`` may be
    None or empty (generated points only).  2-D data: a scatter plot.  1-D
    data: two histograms (real above, generated below).
    ``field``, if given, is ``(values (R, R), lo, hi)``: a discriminator map drawn
    as a grey background (dark = D says "real"), as in the GAN paper's Figure 1.
    """
    fake = np.asarray(fake, np.float64)
    fake = fake.reshape(len(fake), -1)                                  # (N, d)
    real = np.zeros((0, fake.shape[1])) if real is None else np.asarray(real, np.float64).reshape(-1, fake.shape[1])
    both = np.concatenate([real, fake])
    finite = both[np.isfinite(both).all(axis=1)]
    lim = extent or (float(np.abs(finite).max()) * 1.1 if finite.size else 1.0)
    img = Image.new("RGB", (size, size), "white")
    if field is not None:
        values, lo, hi = field
        v = np.asarray(values, np.float64)
        v = (v - v.min()) / (np.ptp(v) or 1.0)
        grey = (255 - 120 * v).astype(np.uint8)[::-1]                  # row 0 at the top
        img = Image.fromarray(grey, mode="L").resize((size, size)).convert("RGB")
        lim = hi
    draw = ImageDraw.Draw(img)
    to_px = lambda a: (a + lim) / (2 * lim) * (size - 1)  # noqa: E731
    if fake.shape[1] >= 2:
        for pts, colour in ((real, (31, 119, 180)), (fake, (214, 39, 40))):
            for x, y in pts[:, :2]:
                if np.isfinite(x) and np.isfinite(y):
                    px, py = to_px(x), size - 1 - to_px(y)
                    draw.ellipse([px - 1.5, py - 1.5, px + 1.5, py + 1.5], fill=colour)
    else:
        bins = np.linspace(-lim, lim, 81)
        for pts, colour, base in ((real, (31, 119, 180), size // 2), (fake, (214, 39, 40), size - 1)):
            h, _ = np.histogram(pts.ravel(), bins=bins, density=True)
            h = h / (h.max() or 1.0) * (size // 2 - 20)
            for i, v in enumerate(h):
                x0, x1 = to_px(bins[i]), to_px(bins[i + 1])
                draw.rectangle([x0, base - v, x1, base], fill=colour)
    draw.text((5, 5), title, fill="black")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        img.save(f, format="PNG")
    return path
