"""A folder of image files (any format Pillow reads) as a labelled array.

Layout::

    root/cat/001.jpg        labels from sub-folder names: sorted class names,
    root/cat/more/002.png   so here 'cat' = 0, 'dog' = 1 (nested folders
    root/dog/003.jpg        below a class folder belong to that class)

    root/a.jpg              no sub-folders with images: every label is 0
    root/b.png              (also when images lie both in root and in
                            sub-folders, with a warning)

Files whose extension is not an image's (``.txt``, ``.csv``, ...) are
ignored.  Image files Pillow cannot decode are skipped with one warning
naming each path, so that a bad file is found when the dataset is built,
not mid-epoch.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from .resize import resize_and_crop

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})

# What Pillow raises on a bad file: UnidentifiedImageError and "image file is
# truncated" are OSErrors; some decoders raise ValueError or SyntaxError.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def _image_files(directory: Path) -> list[Path]:
    """All image files under ``directory`` (recursive), in sorted order."""
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _class_of(path: Path, root: Path) -> str | None:
    """Name of the top-level sub-folder holding ``path``; None for files directly in ``root``."""
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 1 else None


# Pillow's modes for 16-bit greyscale (a 16-bit PNG opens as 'I;16' or, in older
# Pillows, as 32-bit 'I' holding 0..65535).  Pillow's own convert('L') clips
# them at 255 instead of scaling, so nearly every pixel read as white.
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})


def _to_8bit(image: Image.Image) -> Image.Image:
    """A 16-bit greyscale image as 8-bit 'L', scaled: ``v8 = round(v16 * 255 / 65535)`` (65535 -> 255).

    'I' (32-bit) images are read as 16-bit values, clipped to 0..65535.
    Other modes are returned as they are.
    """
    if image.mode not in _SIXTEEN_BIT_MODES:
        return image
    values = np.clip(np.asarray(image, dtype=np.float64), 0, 65535)
    return Image.fromarray(np.rint(values * (255 / 65535)).astype(np.uint8))


def _read_image(path: Path, mode: str, size: int) -> np.ndarray:
    """Decode, convert to ``mode`` ('RGB' or 'L'), resize+crop -> uint8 (C, size, size).

    16-bit greyscale files are scaled to 8 bits first (:func:`_to_8bit`).
    """
    with Image.open(path) as image:
        image = resize_and_crop(_to_8bit(image).convert(mode), size)
        pixels = np.asarray(image, dtype=np.uint8)
    return pixels[None] if mode == "L" else pixels.transpose(2, 0, 1)


def load_image_folder(
    directory: str | Path, image_size: int, channels: int = 3
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Load every image under ``directory`` as a square uint8 array.

    Args:
        directory: root folder, searched recursively.
        image_size: output height and width in pixels (shorter side resized
            to this, then the centre cropped).
        channels: 3 converts to RGB, 1 to greyscale ('L').

    Returns:
        ``(images, labels, class_names)``: images uint8 (N, channels,
        image_size, image_size), labels int64 (N,) indexing the sorted
        ``class_names`` (``[]`` when there are no class sub-folders, in
        which case every label is 0).

    Warns:
        UserWarning naming every file that could not be decoded (skipped),
        and when images lie both in ``directory`` and in sub-folders (then
        all labels are 0).

    Raises:
        FileNotFoundError: ``directory`` does not exist or holds no image files.
        ValueError: bad ``channels``/``image_size``, or no file could be decoded.
    """
    directory = Path(directory)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (greyscale) or 3 (RGB), got {channels}")
    if int(image_size) < 1:
        raise ValueError(f"image_size must be a positive number of pixels, got {image_size}")
    if not directory.is_dir():
        raise FileNotFoundError(f"image folder not found: {directory}")
    files = _image_files(directory)
    if not files:
        raise FileNotFoundError(f"no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) under {directory}")

    classes = [_class_of(p, directory) for p in files]
    class_names = sorted(set(classes) - {None})
    if class_names and None in classes:
        # Mixed layout: keep every image (unlabelled) rather than drop the loose ones.
        warnings.warn(
            f"{directory} has images both directly inside it and in sub-folders; "
            f"ignoring the sub-folder names and labelling all {len(files)} images 0",
            stacklevel=2,
        )
        class_names = []
    index = {name: i for i, name in enumerate(class_names)}

    mode = "L" if channels == 1 else "RGB"
    images, labels, bad = [], [], []
    for path in files:
        try:
            images.append(_read_image(path, mode, int(image_size)))
        except _DECODE_ERRORS as err:
            bad.append(f"{path} ({err})")
            continue
        labels.append(index[_class_of(path, directory)] if class_names else 0)
    if bad:
        warnings.warn(f"skipped {len(bad)} unreadable image file(s): {'; '.join(bad)}", stacklevel=2)
    if not images:
        raise ValueError(f"none of the {len(files)} image file(s) under {directory} could be read")
    return np.stack(images), np.asarray(labels, dtype=np.int64), class_names
