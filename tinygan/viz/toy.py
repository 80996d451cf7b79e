"""Pictures of GANs on the toy targets: the GAN paper's Figure 1 (1-D) and discriminator fields (2-D).

Figure 1 of Goodfellow et al. (2014) shows, along the line x, three curves at
successive moments of training: the data density p_data (black, dotted), the
generator's density p_g (green, solid) and the discriminator D(x) (blue,
dashed).  :func:`save_figure1` draws the same for the 1-D targets:

* p_data exactly (``tinygan.data.toy_density``);
* p_g as a Gaussian kernel density estimate of G(z) samples,
  p_g(x) ~ 1/(n h) sum_i phi((x - G(z_i)) / h), bandwidth h by Scott's rule
  h = std(G(z)) n^(-1/5);
* D(x) = sigmoid(logit(x)) on a grid (for LSGAN and WGAN, whose D is not a
  probability, the raw output on its own axis);
* tick marks under the axis for the real and the generated samples.

For the 2-D targets :func:`save_field_2d` draws real (blue) and generated
(red) points over a heat map of D(x) (or the critic's value).
``tinygan.run.toy`` turns a trained pair (G, D) into these pictures and draws
a toy run at chosen steps; this module only draws.

matplotlib (the ``plot`` extra) is used when it imports, with the Agg
backend (no display); otherwise plain Pillow drawings carry the same content.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from tinygan import functional as F
from tinygan.autograd import Tensor, no_grad
from tinygan.backend import to_device
from tinygan.data import toy_modes
from tinygan.io import atomic_write
from tinygan.viz.curves import save_loss_curves
from tinygan.viz.points import save_points_plot

BLUE, RED, GREEN, BLACK = (31, 119, 180), (214, 39, 40), (44, 160, 44), (0, 0, 0)


def _pyplot():
    """matplotlib.pyplot with the Agg backend, or None when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:
        return None
    return plt


def _atomic_save(path, write) -> Path:
    """Call ``write(file)`` on a new temporary file, then rename it to ``path`` (:func:`tinygan.io.atomic_write`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        write(f)
    return path


# --------------------------------------------------------------------------- numbers behind the pictures

def gaussian_kde_1d(samples, x, bandwidth: float | None = None) -> np.ndarray:
    """Kernel density estimate of 1-D ``samples`` (n,) at points ``x`` (M,): (M,).

    p(x) = 1/(n h) sum_i phi((x - s_i) / h), phi the standard normal density;
    h by Scott's rule std(s) n^(-1/5), floored at a tenth of the grid step so a
    collapsed generator (std 0) still draws a finite spike.
    """
    s = np.asarray(samples, np.float64).ravel()
    s = s[np.isfinite(s)]
    x = np.asarray(x, np.float64)
    if s.size == 0:
        return np.zeros_like(x)
    step = float(np.ptp(x)) / max(len(x) - 1, 1)
    h = bandwidth or max(float(s.std()) * s.size ** (-1 / 5), step / 10, 1e-12)
    u = (x[:, None] - s[None, :]) / h                                      # (M, n)
    return np.exp(-0.5 * u * u).sum(axis=1) / (s.size * h * np.sqrt(2 * np.pi))


def discriminator_on(D, points: np.ndarray, probabilistic: bool = True, batch_size: int = 4096) -> np.ndarray:
    """D evaluated at ``points`` (M, d) without a graph: sigmoid(logit) if ``probabilistic``, else the raw output."""
    was_training = D.training
    D.eval()
    device = D.device
    out = []
    with no_grad():
        for s in range(0, len(points), batch_size):
            x = Tensor(to_device(np.ascontiguousarray(points[s:s + batch_size], dtype=np.float32), device))
            logits = D(x).reshape(-1)
            out.append((F.sigmoid(logits) if probabilistic else logits).numpy().astype(np.float64))
    D.train(was_training)
    return np.concatenate(out) if out else np.zeros(0)


def toy_extent(dataset: str) -> float:
    """Half-width of the square (or segment) shown for a toy target."""
    if dataset == "swissroll":
        return 1.3
    centres, std = toy_modes(dataset)
    return float(np.abs(centres).max() + 3.5 * std + (0.4 if dataset == "ring8" else 1.0))


# --------------------------------------------------------------------------- 1-D: the GAN paper's Figure 1

def save_figure1(x, p_data, fake, d_values, path, title: str = "", real=None, probabilistic: bool = True,
                 size=(640, 400)) -> Path:
    """One frame of Figure 1: p_data (dotted black), KDE of G(z) (green), D(x) (dashed blue).

    Args:
        x: the grid (M,).
        p_data: the exact data density on the grid (M,).
        fake: generated samples (n,) or (n, 1).
        d_values: D on the grid (M,): probabilities when ``probabilistic``,
            else raw critic values (drawn on a separate right-hand axis).
        real: optional real samples for the tick marks under the axis.
    """
    x = np.asarray(x, np.float64)
    fake = np.asarray(fake, np.float64).ravel()
    p_g = gaussian_kde_1d(fake, x)
    top = max(1.05, 1.3 * float(np.max(p_data)))
    plt = _pyplot()
    if plt is None:
        return _pillow_figure1(x, p_data, p_g, d_values, fake, real, path, title, top, probabilistic, size)
    fig, ax = plt.subplots(figsize=(size[0] / 100, size[1] / 100), dpi=100)
    ax.plot(x, p_data, ":", color="black", linewidth=2, label=r"$p_{data}(x)$")
    ax.plot(x, np.minimum(p_g, top), "-", color="tab:green", linewidth=1.8, label=r"$p_g(x)$ (KDE of $G(z)$)")
    if probabilistic:
        ax.plot(x, d_values, "--", color="tab:blue", linewidth=1.8, label=r"$D(x)$")
    else:
        ax2 = ax.twinx()
        ax2.plot(x, d_values, "--", color="tab:blue", linewidth=1.8)
        ax2.set_ylabel("critic / LSGAN output", color="tab:blue")
        ax.plot([], [], "--", color="tab:blue", label="D(x) (raw, right axis)")
    ax.set_ylim(-0.12 * top, top)
    if real is not None:
        r = np.asarray(real, np.float64).ravel()[:300]
        ax.plot(r, np.full_like(r, -0.04 * top), "|", color="black", alpha=0.4, markersize=6)
    f = fake[np.isfinite(fake)][:300]
    ax.plot(f, np.full_like(f, -0.09 * top), "|", color="tab:green", alpha=0.4, markersize=6)
    ax.set_xlim(x[0], x[-1])
    ax.set_xlabel("x")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    fig.tight_layout()
    out = _atomic_save(path, lambda p: fig.savefig(p, format="png"))
    plt.close(fig)
    return out


def _pillow_figure1(x, p_data, p_g, d_values, fake, real, path, title, top, probabilistic, size) -> Path:
    w, h = size
    m = 40
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    to_px = lambda a: m + (np.asarray(a) - x[0]) / (x[-1] - x[0]) * (w - 2 * m)       # noqa: E731
    to_py = lambda b: h - m - np.asarray(b) / top * (h - 2 * m - 20)                    # noqa: E731
    draw.line([(m, h - m), (w - m, h - m)], fill=BLACK)
    d = np.asarray(d_values, np.float64)
    if not probabilistic:                                   # rescale the critic into [0, 1] for drawing
        d = (d - d.min()) / (np.ptp(d) or 1.0)
    for ys, colour, dash in ((p_data, BLACK, 3), (np.minimum(p_g, top), GREEN, 0), (d, BLUE, 8)):
        pts = list(zip(to_px(x), to_py(ys)))
        for i in range(len(pts) - 1):
            if dash == 0 or (i // dash) % 2 == 0:
                draw.line([pts[i], pts[i + 1]], fill=colour, width=2)
    for samples, colour, y0 in ((real, BLACK, h - m + 4), (fake, GREEN, h - m + 14)):
        if samples is None:
            continue
        for v in np.asarray(samples, np.float64).ravel()[:300]:
            if np.isfinite(v) and x[0] <= v <= x[-1]:
                px = float(to_px(v))
                draw.line([(px, y0), (px, y0 + 8)], fill=colour)
    draw.text((m, 5), title, fill=BLACK)
    draw.text((w - 230, 5), "p_data dotted, p_g green, D dashed", fill=BLACK)
    return _atomic_save(path, lambda p: img.save(p, format="PNG"))


# --------------------------------------------------------------------------- 2-D: points over D's field

def field_grid(lim: float, resolution: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """Grid points (R*R, 2) over [-lim, lim]^2 and the axis ticks (R,); row i has y = ticks[i]."""
    ticks = np.linspace(-lim, lim, resolution)
    gx, gy = np.meshgrid(ticks, ticks)                        # gx[i, j] = ticks[j], gy[i, j] = ticks[i]
    return np.stack([gx.ravel(), gy.ravel()], axis=1), ticks


def save_field_2d(real, fake, field: np.ndarray, lim: float, path, title: str = "",
                  label: str = "D(x)", size: int = 480) -> Path:
    """Real (blue) and generated (red) points over ``field`` (R, R), D on :func:`field_grid` (row = y)."""
    plt = _pyplot()
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if plt is None:
        return save_points_plot(real, fake, path, title=title, size=size, field=(field, -lim, lim))
    fig, ax = plt.subplots(figsize=(size / 100 + 1.0, size / 100), dpi=100)
    im = ax.imshow(field, origin="lower", extent=(-lim, lim, -lim, lim), cmap="Greys", alpha=0.85,
                   interpolation="bilinear")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=label)
    ax.scatter(real[:, 0], real[:, 1], s=3, c="tab:blue", alpha=0.5, label="real", linewidths=0)
    ax.scatter(fake[:, 0], fake[:, 1], s=3, c="tab:red", alpha=0.5, label="G(z)", linewidths=0)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper right", fontsize=7, markerscale=3)
    fig.tight_layout()
    out = _atomic_save(path, lambda p: fig.savefig(p, format="png"))
    plt.close(fig)
    return out


def save_panel(frames: Sequence, path, columns: int | None = None) -> Path:
    """Paste image files side by side (``columns`` per row) into one PNG.

    The sheet is stored with a 256-colour palette: plots have few colours, and
    the file is several times smaller than full RGB.
    """
    pics = [Image.open(f).convert("RGB") for f in frames]
    cols = columns or len(pics)
    rows = -(-len(pics) // cols)
    w, h = max(p.width for p in pics), max(p.height for p in pics)
    sheet = Image.new("RGB", (cols * w, rows * h), "white")
    for i, p in enumerate(pics):
        sheet.paste(p, ((i % cols) * w, (i // cols) * h))
    sheet = sheet.quantize(colors=256)                        # RGB -> palette ("P") image
    return _atomic_save(path, lambda t: sheet.save(t, format="PNG", optimize=True))


# --------------------------------------------------------------------------- theory figures

def save_saturation_plot(grads: dict, path, title: str = "Generator gradient as D(G(z)) -> 0") -> Path:
    """Two panels from :func:`tinygan.theory.generator_gradients`: |dL_G/dlogit| and the losses against D.

    Left: the gradient that reaches the generator's network, |dL_G/dl| on
    log-log axes: minimax's is D itself (vanishes), non-saturating's is 1 - D.
    Right: the seed notes' picture, L_G against D(G(z)): log(1 - D) is flat
    near D = 0, -log D is steep.
    """
    d = np.asarray(grads["D"])
    plt = _pyplot()
    if plt is None:
        return _pillow_saturation(grads, path, title)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=100)
    a1.loglog(d, np.abs(grads["dl_minimax"]), color="tab:red", label=r"minimax: $|\partial \log(1-D)/\partial l| = D$")
    a1.loglog(d, np.abs(grads["dl_nonsaturating"]), color="tab:blue",
              label=r"non-saturating: $|\partial(-\log D)/\partial l| = 1-D$")
    a1.set_xlabel(r"$D(G(z))$")
    a1.set_ylabel(r"$|\partial L_G / \partial\, \mathrm{logit}|$")
    a1.legend(fontsize=7)
    a1.set_title("gradient into G (tinygan autograd)", fontsize=9)
    lin = np.linspace(1e-3, 1 - 1e-3, 400)
    a2.plot(lin, np.log1p(-lin), color="tab:red", label=r"minimax $L_G=\log(1-D)$")
    a2.plot(lin, -np.log(lin), color="tab:blue", label=r"non-saturating $L_G=-\log D$")
    a2.set_xlabel(r"$D(G(z))$")
    a2.set_ylabel(r"$L_G$ (minimised)")
    a2.set_ylim(-5, 5)
    a2.legend(fontsize=7)
    a2.set_title("the two generator losses", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = _atomic_save(path, lambda p: fig.savefig(p, format="png"))
    plt.close(fig)
    return out


def _pillow_saturation(grads, path, title, size=(640, 400)) -> Path:
    w, h, m = size[0], size[1], 50
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    lx = np.log10(np.asarray(grads["D"]))
    curves = [(np.log10(np.abs(grads["dl_minimax"]) + 1e-300), RED),             # log-log axes
              (np.log10(np.abs(grads["dl_nonsaturating"]) + 1e-300), BLUE)]
    lo = min(float(c.min()) for c, _ in curves)
    hi = max(float(c.max()) for c, _ in curves) + 0.5
    for c, colour in curves:
        px = m + (lx - lx.min()) / (np.ptp(lx) or 1) * (w - 2 * m)
        py = h - m - (c - lo) / ((hi - lo) or 1) * (h - 2 * m)
        draw.line(list(zip(px, py)), fill=colour, width=2)
    draw.rectangle([m, m, w - m, h - m], outline=BLACK)
    draw.text((m, 10), title + " (log-log |dL_G/dlogit| vs D)", fill=BLACK)
    draw.text((m + 5, m + 5), "red: minimax (vanishes)   blue: non-saturating", fill=BLACK)
    return _atomic_save(path, lambda p: img.save(p, format="PNG"))


def save_optimal_d_plot(x, p_data, p_g, d_star, trained: dict, path, title: str = "") -> Path:
    """p_data and p_g (as densities on the grid) with D* and the trained discriminators ``{name: D (M,)}``."""
    x = np.asarray(x, np.float64)
    dx = float(x[1] - x[0])
    plt = _pyplot()
    if plt is None:
        return _pillow_figure1(x, np.asarray(p_data) / dx, np.asarray(p_g) / dx, d_star, None, None, path,
                               title, max(1.05, 1.3 * float(np.max(p_data) / dx)), True, (640, 400))
    fig, ax = plt.subplots(figsize=(7, 3.8), dpi=100)
    ax.plot(x, np.asarray(p_data) / dx, ":", color="black", linewidth=2, label=r"$p_{data}$")
    ax.plot(x, np.asarray(p_g) / dx, "-", color="tab:green", label=r"$p_g$")
    ax.plot(x, d_star, "-", color="tab:blue", linewidth=3, alpha=0.35,
            label=r"$D^*=p_{data}/(p_{data}+p_g)$")
    styles = ["--", "-."]
    for i, (name, d) in enumerate(trained.items()):
        ax.plot(x, d, styles[i % 2], color=("tab:blue", "tab:purple")[i % 2], linewidth=1.3, label=name)
    ax.set_xlabel("x")
    ax.set_ylim(-0.02, 1.05)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    out = _atomic_save(path, lambda p: fig.savefig(p, format="png"))
    plt.close(fig)
    return out


def save_value_curve(shifts, values, jsd_values, path, title: str = "") -> Path:
    """C(G) = max_D V against a generator parameter, beside -log 4 + 2 JSD (they coincide)."""
    shifts = np.asarray(shifts, np.float64)
    plt = _pyplot()
    if plt is None:
        return save_loss_curves(shifts, {"C(G)": values, "-log4 + 2 JSD": -np.log(4) + 2 * np.asarray(jsd_values)},
                                path, title=title)
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    ax.plot(shifts, values, "-", color="tab:blue", linewidth=3, alpha=0.4, label=r"$C(G)=V(D^*,G)$")
    ax.plot(shifts, -np.log(4) + 2 * np.asarray(jsd_values), "--", color="black",
            label=r"$-\log 4 + 2\,\mathrm{JSD}(p_{data}\|p_g)$")
    ax.axhline(-np.log(4), color="grey", linewidth=0.8)
    ax.set_xlabel(r"mean of $p_g$")
    ax.set_ylabel("nats")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = _atomic_save(path, lambda p: fig.savefig(p, format="png"))
    plt.close(fig)
    return out
