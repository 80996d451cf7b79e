"""Tests for tinygan.data: file formats, bundled data, batching, toy targets.

Everything runs offline on small files the tests write into tmp_path.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

import tinygan.data as data
from tinygan.data import fetch

# ------------------------------------------------------------------ bundled


def test_bundled_mnist_loads_and_matches_hash():
    images, labels = data.load_bundled_mnist()
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10_000,) and labels.dtype == np.uint8
    assert set(np.unique(labels)) == set(range(10))
    assert images.max() == 255 and np.median(images) == 0  # mostly background
    assert data.sha256_file(data.BUNDLED_MNIST_PATH) == data.BUNDLED_MNIST_SHA256


def test_tampered_bundled_copy_gives_clear_error(tmp_path):
    copy = tmp_path / "mnist-10k.npz"
    shutil.copy(data.BUNDLED_MNIST_PATH, copy)
    with open(copy, "r+b") as f:  # flip one byte in the middle
        f.seek(5000)
        byte = f.read(1)
        f.seek(5000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ValueError) as err:
        data.load_bundled_mnist(copy)
    message = str(err.value)
    assert str(copy) in message and data.BUNDLED_MNIST_SHA256 in message
    assert data.sha256_file(copy) in message


def test_get_dataset_default_is_bundled_mnist():
    ds = data.get_dataset()
    assert ds.images.shape == (10_000, 1, 28, 28) and ds.labels.dtype == np.int64
    assert (ds.channels, ds.image_size, ds.num_classes, ds.name) == (1, 28, 10, "mnist")


def test_get_dataset_resizes_mnist_once():
    ds = data.get_dataset("mnist", image_size=32)
    assert ds.images.shape == (10_000, 1, 32, 32) and ds.images.dtype == np.uint8
    big = data.resize_images(ds.images[:50], 64)
    assert big.shape == (50, 1, 64, 64) and big.dtype == np.uint8
    # Bilinear resizing keeps the digit where it was: ink near the centre, not the border.
    assert big[:, :, 24:40, 24:40].mean() > 4 * big[:, :, :4, :].mean()


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ValueError, match="mnist, fashion-mnist, cifar10, folder"):
        data.get_dataset("imagenet")


# --------------------------------------------------------------------- IDX


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, suffix):
    rng = np.random.default_rng(0)
    for array in (rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
                  rng.integers(0, 10, 5, dtype=np.uint8),
                  rng.standard_normal((3, 4)).astype(np.float32),
                  rng.integers(-1000, 1000, (2, 3, 4), dtype=np.int32)):
        path = tmp_path / f"a{array.ndim}{array.dtype}{suffix}"
        data.save_idx(path, array)
        back = data.load_idx(path)
        assert back.dtype == array.dtype and back.dtype.isnative
        np.testing.assert_array_equal(back, array)


def test_idx_header_matches_mnist_magic(tmp_path):
    path = tmp_path / "x"
    data.save_idx(path, np.zeros((2, 28, 28), np.uint8))
    assert path.read_bytes()[:16] == bytes.fromhex("00000803" "00000002" "0000001c" "0000001c")


def test_idx_truncated_and_bad_magic(tmp_path):
    good = tmp_path / "good"
    data.save_idx(good, np.arange(100, dtype=np.uint8).reshape(4, 25))
    raw = good.read_bytes()

    truncated = tmp_path / "truncated"
    truncated.write_bytes(raw[:-7])
    with pytest.raises(ValueError, match="truncated") as err:
        data.load_idx(truncated)
    assert str(truncated) in str(err.value)

    bad_magic = tmp_path / "bad-magic"
    bad_magic.write_bytes(b"\x12\x34" + raw[2:])
    with pytest.raises(ValueError, match="bad IDX magic number") as err:
        data.load_idx(bad_magic)
    assert str(bad_magic) in str(err.value)

    too_long = tmp_path / "too-long"
    too_long.write_bytes(raw + b"\0")
    with pytest.raises(ValueError, match="wrong size"):
        data.load_idx(too_long)

    cut_gz = tmp_path / "cut.gz"
    cut_gz.write_bytes(gzip.compress(raw)[:-10])
    with pytest.raises(ValueError, match="cut.gz"):
        data.load_idx(cut_gz)

    with pytest.raises(FileNotFoundError, match="missing"):
        data.load_idx(tmp_path / "missing")


def _write_mnist_dir(folder, n=6, gz=True, prefix="train"):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    ext = ".gz" if gz else ""
    folder.mkdir(parents=True, exist_ok=True)
    data.save_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images)
    data.save_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels)
    return images, labels


def test_load_mnist_dir_and_get_dataset_from_idx(tmp_path):
    images, labels = _write_mnist_dir(tmp_path, gz=True)
    _write_mnist_dir(tmp_path, n=3, gz=False, prefix="t10k")
    got_images, got_labels = data.load_mnist_dir(tmp_path)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert data.load_mnist_dir(tmp_path, train=False)[0].shape == (3, 28, 28)

    ds = data.get_dataset("fashion-mnist", data_dir=tmp_path, image_size=32)
    assert ds.images.shape == (6, 1, 32, 32) and ds.name == "fashion-mnist"
    ds = data.get_dataset("mnist", data_dir=tmp_path)
    np.testing.assert_array_equal(ds.images[:, 0], images)


def test_missing_mnist_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        data.load_mnist_dir(tmp_path)
    with pytest.raises(FileNotFoundError, match="--download"):
        data.get_dataset("fashion-mnist", data_dir=tmp_path)


# ----------------------------------------------------------------- CIFAR-10


def _cifar_records(labels, images):
    """Bytes of a CIFAR-10 binary batch: per image 1 label byte + 3072 pixel bytes."""
    flat = images.reshape(len(images), -1)
    return np.concatenate([labels[:, None], flat], axis=1).astype(np.uint8).tobytes()


def test_cifar10_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    folder = tmp_path / "cifar-10-batches-bin"  # the archive's own sub-folder
    folder.mkdir()
    all_images, all_labels = [], []
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        images = rng.integers(0, 256, (3, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, 3, dtype=np.uint8)
        (folder / name).write_bytes(_cifar_records(labels, images))
        all_images.append(images)
        all_labels.append(labels)
    images, labels = data.load_cifar10_dir(tmp_path)
    assert images.shape == (15, 3, 32, 32) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, np.concatenate(all_images[:5]))
    np.testing.assert_array_equal(labels, np.concatenate(all_labels[:5]))
    test_images, test_labels = data.load_cifar10_dir(folder, train=False)
    np.testing.assert_array_equal(test_images, all_images[5])
    # The red plane comes first: byte 1 of a record is pixel (R, row 0, col 0).
    raw = (folder / "test_batch.bin").read_bytes()
    assert raw[1] == test_images[0, 0, 0, 0] and raw[1 + 1024] == test_images[0, 1, 0, 0]

    ds = data.get_dataset("cifar10", data_dir=tmp_path, train=False, image_size=16)
    assert ds.images.shape == (3, 3, 16, 16) and ds.channels == 3


def test_cifar10_wrong_size_and_missing(tmp_path):
    (tmp_path / "test_batch.bin").write_bytes(bytes(3073 * 2 - 5))
    with pytest.raises(ValueError, match="wrong size") as err:
        data.load_cifar10_dir(tmp_path, train=False)
    assert "test_batch.bin" in str(err.value)
    with pytest.raises(FileNotFoundError, match="data_batch_1.bin"):
        data.load_cifar10_dir(tmp_path, train=True)


# -------------------------------------------------------------- image folder


def _save(path, size, colour):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def test_image_folder_labels_resize_and_corrupt_file(tmp_path):
    _save(tmp_path / "cats" / "a.png", (40, 20), (255, 0, 0))
    _save(tmp_path / "cats" / "deep" / "b.jpg", (20, 50), (250, 0, 0))
    _save(tmp_path / "dogs" / "c.bmp", (16, 16), (0, 0, 255))
    corrupt = tmp_path / "dogs" / "broken.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (tmp_path / "dogs" / "notes.txt").write_text("ignored: not an image extension")

    with pytest.warns(UserWarning, match="broken.png") as record:
        images, labels, classes = data.load_image_folder(tmp_path, image_size=8)
    assert str(corrupt) in str(record[0].message)
    assert images.shape == (3, 3, 8, 8) and images.dtype == np.uint8
    assert classes == ["cats", "dogs"] and labels.tolist() == [0, 0, 1]
    assert images[0, 0].min() == 255 and images[2, 2].min() == 255  # red cat, blue dog

    # cats/ holds a.png and deep/b.jpg: a mixed layout, so every image is kept with label 0.
    with pytest.warns(UserWarning, match="labelling all 2 images 0"):
        grey, grey_labels, grey_classes = data.load_image_folder(tmp_path / "cats", image_size=4, channels=1)
    assert grey.shape == (2, 1, 4, 4) and grey_labels.tolist() == [0, 0] and grey_classes == []


def test_image_folder_centre_crop(tmp_path):
    # 30x10 image: left and right thirds black, middle third white.
    pixels = np.zeros((10, 30, 3), np.uint8)
    pixels[:, 10:20] = 255
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    images, labels, classes = data.load_image_folder(tmp_path, image_size=10)
    assert images.shape == (1, 3, 10, 10) and classes == [] and labels.tolist() == [0]
    assert images.min() == 255  # only the white centre survives the crop


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_image_folder_scales_16_bit_greyscale(tmp_path, mode):
    # A 16-bit ramp 0..65535: read as 8 bits it must be the ramp 0..255, not "white from 255 on".
    ramp16 = np.linspace(0, 65535, 16).round().astype(np.uint16).reshape(4, 4)
    path = tmp_path / "ramp.png"
    image = Image.fromarray(ramp16)                                      # mode 'I;16'
    if mode == "I;16B":
        image = Image.frombytes("I;16B", (4, 4), ramp16.astype(">u2").tobytes())
    elif mode == "I":  # 32-bit ints holding 0..65535 (Pillow writes mode 'I' as TIFF, not PNG)
        image, path = Image.fromarray(ramp16.astype(np.int32)), tmp_path / "ramp.tif"
    image.save(path)
    with Image.open(path) as saved:
        assert saved.mode in ("I;16", "I;16B", "I")                      # really a high-depth file
        assert np.asarray(saved).max() == 65535
    expected = np.rint(ramp16 * (255 / 65535)).astype(np.uint8)          # 65535 -> 255, 257 * k -> k
    for channels in (1, 3):
        images, _, _ = data.load_image_folder(tmp_path, image_size=4, channels=channels)
        assert images.shape == (1, channels, 4, 4)
        for c in range(channels):
            np.testing.assert_array_equal(images[0, c], expected)


def test_image_folder_with_no_readable_image(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="x.jpg"), pytest.raises(ValueError, match="could be read"):
        data.load_image_folder(tmp_path, image_size=8)


def test_get_dataset_folder(tmp_path):
    for i in range(3):
        _save(tmp_path / f"{i}.png", (12, 12), (i * 100, 0, 0))
    ds = data.get_dataset("folder", data_dir=tmp_path, image_size=8)
    assert ds.images.shape == (3, 3, 8, 8) and ds.num_classes == 1 and ds.name == "folder"


# --------------------------------------------------------------- DataLoader


def _toy_images(n=100):
    return np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 1, 2, 2), np.uint8)


def test_loader_shapes_range_and_drop_last():
    ds = data.ImageDataset(_toy_images(100), np.arange(100) % 10, 10, "toy")
    loader = data.DataLoader(ds, batch_size=32, seed=3)
    batches = list(loader.epoch_batches(0))
    assert len(loader) == 3 == len(batches)
    for x, y in batches:
        assert x.shape == (32, 1, 2, 2) and x.dtype == np.float32
        assert y.shape == (32,) and y.dtype == np.int64
        assert -1.0 <= x.min() and x.max() <= 1.0
        np.testing.assert_array_equal(y, (np.rint((x[:, 0, 0, 0] + 1) * 127.5) % 10).astype(np.int64))
    keep = data.DataLoader(ds, batch_size=32, drop_last=False)
    assert len(keep) == 4 and keep.batch(0, 3)[0].shape == (4, 1, 2, 2)
    extremes = data.DataLoader(np.array([[[0, 255]]], np.uint8), batch_size=1)
    np.testing.assert_array_equal(extremes.batch(0, 0)[0], [[[[-1.0, 1.0]]]])


def test_loader_reproducible_and_epochs_differ():
    images = _toy_images(100)
    a = data.DataLoader(images, batch_size=10, seed=7)
    b = data.DataLoader(images, batch_size=10, seed=7)
    order = lambda loader, e: np.concatenate([x[:, 0, 0, 0] for x, _ in loader.epoch_batches(e)])
    np.testing.assert_array_equal(order(a, 0), order(b, 0))
    assert not np.array_equal(order(a, 0), order(a, 1))
    assert not np.array_equal(order(a, 0), order(data.DataLoader(images, batch_size=10, seed=8), 0))
    np.testing.assert_array_equal(a.permutation(4), np.random.default_rng([7, 4]).permutation(100))
    assert sorted(order(a, 0)) == sorted(order(a, 1))  # a permutation: each image once
    # iter() walks epochs 0, 1, ... in turn
    np.testing.assert_array_equal(np.concatenate([x[:, 0, 0, 0] for x, _ in a]), order(a, 0))
    np.testing.assert_array_equal(np.concatenate([x[:, 0, 0, 0] for x, _ in a]), order(a, 1))


def test_loader_resume_equals_tail_of_epoch():
    loader = data.DataLoader(_toy_images(100), np.arange(100), batch_size=8, seed=11)
    full = list(loader.epoch_batches(5))
    tail = list(loader.epoch_batches(5, start=4))
    assert len(tail) == len(full) - 4
    for (x1, y1), (x2, y2) in zip(full[4:], tail):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(loader.batch(5, 6)[1], full[6][1])
    assert list(loader.epoch_batches(5, start=len(loader))) == []
    with pytest.raises(IndexError):
        loader.batch(5, len(loader))


def test_loader_rejects_bad_input():
    with pytest.raises(ValueError, match="no batches"):
        data.DataLoader(_toy_images(10), batch_size=32)
    with pytest.raises(TypeError, match="uint8"):
        data.DataLoader(np.zeros((4, 1, 2, 2), np.float32), batch_size=2)


def test_to_uint8_inverts_to_float():
    pixels = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(data.to_uint8(data.to_float(pixels)), pixels)


# ------------------------------------------------------------------- toys


@pytest.mark.parametrize("name", data.TOY_DATASETS)
def test_toy_shapes(name):
    x = data.sample_toy(name, 500, np.random.default_rng(0))
    assert x.shape == (500, data.toy_dim(name)) and x.dtype == np.float32
    np.testing.assert_array_equal(x, data.sample_toy(name, 500, np.random.default_rng(0)))


@pytest.mark.parametrize("name", ["gauss1d", "bimodal1d", "ring8", "grid25"])
def test_toy_samples_sit_on_their_modes(name):
    centres, std = data.toy_modes(name)
    x = data.sample_toy(name, 20_000, np.random.default_rng(1)).astype(np.float64)
    dist = np.linalg.norm(x[:, None, :] - centres[None], axis=2)
    nearest = dist.argmin(axis=1)
    assert np.bincount(nearest, minlength=len(centres)).min() > 0.8 * len(x) / len(centres)
    for k in range(len(centres)):  # each cluster's mean is its centre, within 5 standard errors
        members = x[nearest == k]
        assert np.all(np.abs(members.mean(axis=0) - centres[k]) < 5 * std / np.sqrt(len(members)) + 1e-3)


def test_toy_mode_definitions():
    ring, ring_std = data.toy_modes("ring8")
    assert ring.shape == (8, 2) and ring_std == 0.01
    np.testing.assert_allclose(ring[0], [1.0, 0.0])  # first mode at angle 0
    np.testing.assert_allclose(np.linalg.norm(ring, axis=1), 1.0)
    np.testing.assert_allclose(np.arctan2(ring[:, 1], ring[:, 0]) % (2 * np.pi), 2 * np.pi * np.arange(8) / 8, atol=1e-12)
    grid, grid_std = data.toy_modes("grid25")
    assert grid.shape == (25, 2) and grid_std == 0.05
    assert {tuple(c) for c in grid} == {(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
    centre, std = data.toy_modes("gauss1d")
    assert centre.tolist() == [[4.0]] and std == 0.5
    with pytest.raises(ValueError):
        data.toy_modes("swissroll")
    roll = data.sample_toy("swissroll", 2000, np.random.default_rng(0))
    assert 0.9 < np.abs(roll).max() < 1.2  # roughly unit size


@pytest.mark.parametrize("name", ["gauss1d", "bimodal1d"])
def test_toy_density_integrates_to_one_and_matches_samples(name):
    grid = np.linspace(-8, 8, 4001)
    p = data.toy_density(name, grid)
    assert p.shape == grid.shape
    assert abs(p.sum() * (grid[1] - grid[0]) - 1) < 1e-6  # Riemann sum; the tails beyond +-8 are negligible
    x = data.sample_toy(name, 50_000, np.random.default_rng(2))[:, 0]
    hist, edges = np.histogram(x, bins=80, range=(-8, 8), density=True)
    mid = (edges[:-1] + edges[1:]) / 2
    assert np.abs(hist - data.toy_density(name, mid)).max() < 0.05


def test_toy_rejects_unknown_name_and_bad_rng():
    with pytest.raises(ValueError, match="ring8"):
        data.sample_toy("ring9", 3, np.random.default_rng())
    with pytest.raises(TypeError, match="Generator"):
        data.sample_toy("ring8", 3, 0)


# ---------------------------------------------------------------- download


def test_download_offline_error_names_dataset_url_and_folder(tmp_path, monkeypatch):
    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(RuntimeError) as err:
        data.download("mnist", cache_dir=tmp_path)
    message = str(err.value)
    assert message.startswith("could not download mnist from https://ossci-datasets.s3.amazonaws.com/mnist/")
    assert "name resolution" in message and str(tmp_path / "mnist") in message and "--data-dir" in message
    assert list((tmp_path / "mnist").iterdir()) == []  # no half-written file left behind

    with pytest.raises(RuntimeError, match="could not download cifar10"):
        data.get_dataset("cifar10", data_dir=tmp_path, download=True)
    with pytest.raises(ValueError, match="cifar10"):
        data.download("svhn", cache_dir=tmp_path)


def test_download_checks_sha256_and_renames_atomically(tmp_path, monkeypatch):
    payload = b"not the real file"
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(payload))
    remote = fetch.RemoteFile("f.gz", "https://example.invalid/f.gz", "0" * 64)
    with pytest.raises(RuntimeError, match="SHA-256"):
        fetch._fetch("test", remote, tmp_path / "f.gz")
    assert list(tmp_path.iterdir()) == []

    good = fetch.RemoteFile("f.gz", remote.url, hashlib.sha256(payload).hexdigest())
    fetch._fetch("test", good, tmp_path / "f.gz")
    assert (tmp_path / "f.gz").read_bytes() == payload and len(list(tmp_path.iterdir())) == 1


def test_cifar10_archive_extracts_only_the_batches(tmp_path):
    import tarfile

    rng = np.random.default_rng(3)
    archive = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        members = [f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)]
        members += ["cifar-10-batches-bin/test_batch.bin", "../evil.bin", "cifar-10-batches-bin/readme.html"]
        for name in members:
            payload = _cifar_records(rng.integers(0, 10, 2, dtype=np.uint8),
                                     rng.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8))
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    out = tmp_path / "cache" / "cifar-10-batches-bin"
    fetch._extract_cifar10(archive, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"])
    assert not (tmp_path / "evil.bin").exists() and not (tmp_path / "cache" / "evil.bin").exists()
    assert data.load_cifar10_dir(out.parent)[0].shape == (10, 3, 32, 32)
