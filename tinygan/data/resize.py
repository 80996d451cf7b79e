"""Resizing with Pillow: shorter side to ``size``, then a centre crop.

Used once when a dataset is built (never per batch), so training batches
are plain slicing.  Pillow's bilinear filter widens its support when it
shrinks an image, so downsizing is antialiased rather than aliased.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

RESAMPLE = getattr(Image, "Resampling", Image).BILINEAR  # Image.Resampling is Pillow >= 9.1


def resize_and_crop(image: Image.Image, size: int) -> Image.Image:
    """Scale ``image`` so its shorter side is ``size`` pixels, then crop the centre ``size`` x ``size``."""
    width, height = image.size
    if (width, height) == (size, size):
        return image
    scale = size / min(width, height)
    # max(size, ...) guards against rounding the shorter side to size - 1.
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    image = image.resize((new_w, new_h), RESAMPLE)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return image.crop((left, top, left + size, top + size))


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Resize a batch of uint8 images, one by one with Pillow.

    Args:
        images: uint8 (N, C, H, W) with C = 1 (grey) or 3 (RGB).
        size: output height and width in pixels.

    Returns:
        uint8 (N, C, size, size); the input itself when it already has that size.
    """
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"resize_images expects uint8 (N, C, H, W) with C in (1, 3), got {images.dtype} {images.shape}")
    if size < 1:
        raise ValueError(f"image size must be a positive number of pixels, got {size}")
    n, c, h, w = images.shape
    if (h, w) == (size, size):
        return images
    out = np.empty((n, c, size, size), dtype=np.uint8)
    for i in range(n):
        # Pillow wants (H, W) for grey ('L') and (H, W, 3) for 'RGB'.
        hwc = images[i, 0] if c == 1 else images[i].transpose(1, 2, 0)
        resized = np.asarray(resize_and_crop(Image.fromarray(hwc), size))
        out[i] = resized[None] if c == 1 else resized.transpose(2, 0, 1)
    return out
