"""Image grids and animated GIFs with Pillow, written atomically (:func:`tinygan.io.atomic_write`)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from tinygan.io import atomic_write


def images_to_uint8(images) -> np.ndarray:
    """(N, C, H, W) floats in [-1, 1] (or uint8) -> uint8 (N, C, H, W) with 0..255."""
    a = np.asarray(images)
    if a.dtype == np.uint8:
        return a
    a = (a.astype(np.float64) + 1.0) * 127.5          # [-1, 1] -> [0, 255]
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def make_grid(images, nrow: int = 8, padding: int = 2, pad_value: int = 0) -> np.ndarray:
    """Tile (N, C, H, W) images into one (H', W', C) uint8 array, ``nrow`` images per row (as torchvision)."""
    a = images_to_uint8(images)
    if a.ndim != 4:
        raise ValueError(f"make_grid: expected images of shape (N, C, H, W), got {a.shape}")
    n, c, h, w = a.shape
    ncol = min(nrow, n)
    nrows = math.ceil(n / ncol)
    grid = np.full((padding + nrows * (h + padding), padding + ncol * (w + padding), c), pad_value, np.uint8)
    for k in range(n):
        r, q = divmod(k, ncol)
        top, left = padding + r * (h + padding), padding + q * (w + padding)
        grid[top:top + h, left:left + w] = a[k].transpose(1, 2, 0)     # (C, H, W) -> (H, W, C)
    return grid


def _to_pil(grid: np.ndarray, scale: int = 1):
    from PIL import Image
    img = Image.fromarray(grid[..., 0] if grid.shape[2] == 1 else grid, mode="L" if grid.shape[2] == 1 else "RGB")
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    return img


def save_image_grid(images, path, nrow: int = 8, padding: int = 2, scale: int = 1) -> Path:
    """Write a PNG grid of (N, C, H, W) images (floats in [-1, 1] or uint8), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = _to_pil(make_grid(images, nrow, padding), scale)
    with atomic_write(path) as f:
        img.save(f, format="PNG")
    return path


def _open_rgb(path):
    from PIL import Image
    with Image.open(path) as img:        # closes the file once the pixels are converted
        return img.convert("RGB")


def save_gif(frames: Sequence, path, duration_ms: int = 300) -> Path:
    """An animated GIF from image paths or (H, W, C) uint8 arrays, looping forever; written atomically."""
    if not frames:
        raise ValueError("save_gif: no frames")
    pics = [_open_rgb(f) if isinstance(f, (str, Path)) else _to_pil(np.asarray(f)).convert("RGB") for f in frames]
    path = Path(path)
    with atomic_write(path) as f:
        pics[0].save(f, format="GIF", save_all=True, append_images=pics[1:], duration=duration_ms, loop=0)
    return path
