"""Tests for writing and fetching files safely, and for checking the data a run sees.

* every writer in tinygan.data / tinygan.viz / the classifier cache goes through
  ``tinygan.io.atomic_write``: a file or symbolic link planted at the old
  predictable temporary name ``out.png.tmp`` is neither followed nor clobbered,
  and a failed write leaves the old file as it was;
* downloads have an overall deadline (a local HTTP server that trickles bytes),
  and cached downloads are SHA-256 checked like fresh ones;
* ``dataset_fingerprint`` is stable and changes with the data;
* ``get_dataset`` rejects an unreasonable ``image_size`` before reading or resizing anything.

Everything is offline: the only server is one on 127.0.0.1 started here.
"""
from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import tarfile
import threading
import time
import types
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tinygan.data as data
from tinygan.data import datasets, fetch

# ------------------------------------------------------------ atomic writes


def _plant(folder: Path, name: str) -> tuple[Path, Path]:
    """A victim file and a symbolic link to it at the old temp name ``name + '.tmp'``."""
    victim = folder / "victim.txt"
    victim.write_bytes(b"precious")
    (folder / (name + ".tmp")).symlink_to(victim)
    return victim, folder / (name + ".tmp")


def _assert_untouched(folder: Path, name: str, victim: Path, link: Path) -> None:
    assert victim.read_bytes() == b"precious"
    assert link.is_symlink() and link.resolve() == victim.resolve()
    assert (folder / name).is_file() and not (folder / name).is_symlink()
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(f".{name}.")]
    assert leftovers == [], f"temporary files left behind: {leftovers}"


def _digits(n=4, size=8):
    return np.random.default_rng(0).integers(0, 256, (n, 1, size, size), dtype=np.uint8)


def _write_grid(path):
    from tinygan.viz.images import save_image_grid
    save_image_grid(_digits(), path, nrow=2)


def _write_gif(path):
    from tinygan.viz.images import save_gif
    save_gif([np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)], path)


def _write_curves(path):
    from tinygan.viz.curves import save_loss_curves
    save_loss_curves([0, 1, 2, 3], {"G": [1.0, 0.8, 0.7, 0.6], "D": [0.7, 0.6, 0.6, 0.5]}, path)


def _write_curves_without_matplotlib(path):
    from tinygan.viz import curves
    original = curves._pyplot
    curves._pyplot = lambda: None
    try:
        curves.save_loss_curves([0, 1, 2], {"G": [1.0, 0.5, 0.2]}, path)
    finally:
        curves._pyplot = original


def _write_points(path):
    from tinygan.viz.points import save_points_plot
    rng = np.random.default_rng(0)
    save_points_plot(rng.standard_normal((50, 2)), rng.standard_normal((50, 2)), path, size=64)


WRITERS = {
    "save_image_grid": (_write_grid, "out.png"),
    "save_gif": (_write_gif, "out.gif"),
    "save_loss_curves": (_write_curves, "out.png"),
    "save_loss_curves (Pillow)": (_write_curves_without_matplotlib, "out.png"),
    "save_points_plot": (_write_points, "out.png"),
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_image_writers_ignore_a_planted_temp_symlink(tmp_path, writer):
    write, name = WRITERS[writer]
    victim, link = _plant(tmp_path, name)
    write(tmp_path / name)
    _assert_untouched(tmp_path, name, victim, link)
    with Image.open(tmp_path / name) as img:
        img.load()
        assert img.format == ("GIF" if name.endswith(".gif") else "PNG")


def test_image_writers_ignore_a_planted_temp_file(tmp_path):
    (tmp_path / "out.png.tmp").write_bytes(b"someone's file")
    _write_grid(tmp_path / "out.png")
    assert (tmp_path / "out.png.tmp").read_bytes() == b"someone's file"


def test_failed_image_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"old picture")

    def broken_save(self, fp, format=None, **kwargs):
        fp.write(b"half a PNG")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        _write_grid(target)
    assert target.read_bytes() == b"old picture"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_save_gif_from_files_closes_them_and_is_atomic(tmp_path):
    from tinygan.viz.images import save_gif
    frames = []
    for i in range(2):
        frames.append(tmp_path / f"f{i}.png")
        Image.fromarray(np.full((8, 8, 3), 100 * i, np.uint8)).save(frames[-1])
    victim, link = _plant(tmp_path, "anim.gif")
    save_gif(frames, tmp_path / "anim.gif")
    _assert_untouched(tmp_path, "anim.gif", victim, link)
    with Image.open(tmp_path / "anim.gif") as gif:
        assert gif.n_frames == 2


def test_classifier_cache_write_ignores_a_planted_temp_symlink(tmp_path):
    from tinygan.metrics import classifier as C
    model = C._seeded_model(0)
    name = C.classifier_path(0, tmp_path).name
    victim, link = _plant(tmp_path, name)
    C.save_classifier(model, {"seed": 0}, C.classifier_path(0, tmp_path))
    _assert_untouched(tmp_path, name, victim, link)
    loaded, info = C.load_classifier_file(C.classifier_path(0, tmp_path))
    assert info == {"seed": 0}
    np.testing.assert_array_equal(loaded.fc2.weight.numpy(), model.fc2.weight.numpy())


def test_save_idx_is_atomic(tmp_path):
    victim, link = _plant(tmp_path, "x.idx")
    data.save_idx(tmp_path / "x.idx", np.arange(6, dtype=np.uint8).reshape(2, 3))
    _assert_untouched(tmp_path, "x.idx", victim, link)
    np.testing.assert_array_equal(data.load_idx(tmp_path / "x.idx"), np.arange(6).reshape(2, 3))


def test_download_and_unpack_ignore_planted_temp_names(tmp_path, monkeypatch):
    payload = b"the file"
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(payload))
    victim, link = _plant(tmp_path, "f.gz")
    fetch._fetch("test", fetch.RemoteFile("f.gz", "https://example.invalid/f.gz",
                                          hashlib.sha256(payload).hexdigest()), tmp_path / "f.gz")
    _assert_untouched(tmp_path, "f.gz", victim, link)
    assert (tmp_path / "f.gz").read_bytes() == payload

    out = tmp_path / "batches"
    out.mkdir()
    victim, link = _plant(out, "b.bin")
    digest = fetch._copy_atomically(io.BytesIO(b"batch"), out / "b.bin")
    assert digest == hashlib.sha256(b"batch").hexdigest()
    _assert_untouched(out, "b.bin", victim, link)


# ------------------------------------------------------- download deadline


class _Server:
    """An HTTP server on 127.0.0.1 in a thread: ``/slow`` trickles a byte every 50 ms
    (for 20 s, so that a client without a deadline fails rather than hangs), ``/stall``
    sends headers and then nothing, ``/short`` promises 100 bytes and sends 10, other
    paths serve ``files``."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.stop = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                try:
                    if self.path in ("/slow", "/stall"):
                        self.send_response(200)
                        self.send_header("Content-Length", str(10**9))
                        self.end_headers()
                        self.wfile.flush()
                        give_up = time.monotonic() + 20
                        while not server.stop.wait(0.05) and time.monotonic() < give_up:
                            if self.path == "/slow":
                                self.wfile.write(b"x")
                                self.wfile.flush()
                        return
                    if self.path == "/short":
                        self.send_response(200)
                        self.send_header("Content-Length", "100")
                        self.end_headers()
                        self.wfile.write(b"0123456789")
                        return
                    body = server.files.get(self.path)
                    if body is None:
                        self.send_error(404)
                        return
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up: what the deadline is for

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv(fetch.DEADLINE_ENV, raising=False)
    s = _Server()
    yield s
    s.close()


def test_trickling_server_hits_the_deadline(tmp_path, server):
    remote = fetch.RemoteFile("f.gz", server.url + "/slow", "0" * 64)
    start = time.monotonic()
    with pytest.raises(RuntimeError) as err:
        fetch._fetch("test", remote, tmp_path / "f.gz", deadline_s=0.5)
    elapsed = time.monotonic() - start
    message = str(err.value)
    assert message.startswith(f"could not download test from {remote.url}: not finished within the 0.5 s deadline")
    assert fetch.DEADLINE_ENV in message and str(tmp_path) in message
    assert 0.5 <= elapsed < 5, elapsed  # trickled bytes keep every single read alive: only the deadline ends it
    assert list(tmp_path.iterdir()) == []


def test_stalled_server_fails_within_the_deadline(tmp_path, server):
    remote = fetch.RemoteFile("f.gz", server.url + "/stall", "0" * 64)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=f"could not download test from {remote.url}"):
        fetch._fetch("test", remote, tmp_path / "f.gz", deadline_s=0.5)
    assert time.monotonic() - start < 5
    assert list(tmp_path.iterdir()) == []


def test_connection_closed_early_is_a_clear_error(tmp_path, server):
    remote = fetch.RemoteFile("f.gz", server.url + "/short", "0" * 64)
    expected = f"could not download test from {remote.url}: connection closed after 10 of 100 bytes; .*--data-dir"
    with pytest.raises(RuntimeError, match=expected):
        fetch._fetch("test", remote, tmp_path / "f.gz", deadline_s=10)
    assert list(tmp_path.iterdir()) == []


def test_deadline_from_the_environment(tmp_path, server, monkeypatch):
    monkeypatch.setenv(fetch.DEADLINE_ENV, "0.3")
    assert fetch.download_deadline() == 0.3
    assert fetch.download_deadline(7) == 7.0  # an explicit argument wins
    with pytest.raises(RuntimeError, match="0.3 s deadline"):
        fetch._fetch("test", fetch.RemoteFile("f.gz", server.url + "/slow", "0" * 64), tmp_path / "f.gz")
    monkeypatch.delenv(fetch.DEADLINE_ENV)
    assert fetch.download_deadline() == fetch.DEADLINE_S


@pytest.mark.parametrize("bad", ["soon", "0", "-5", "nan", "inf"])
def test_bad_deadline_is_named_before_any_network(tmp_path, monkeypatch, bad):
    def no_network(*args, **kwargs):
        raise AssertionError("urlopen must not be called")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setenv(fetch.DEADLINE_ENV, bad)
    with pytest.raises(ValueError, match=f"{fetch.DEADLINE_ENV} must be a positive number of seconds, got '{bad}'"):
        data.download("mnist", cache_dir=tmp_path)
    monkeypatch.delenv(fetch.DEADLINE_ENV)
    with pytest.raises(ValueError, match="deadline_s must be a positive number of seconds"):
        data.download("mnist", cache_dir=tmp_path, deadline_s=float(bad) if bad != "soon" else bad)


def test_a_real_http_download_succeeds(tmp_path, server):
    body = bytes(range(256)) * 5000  # 1.28 MB: several reads
    server.files["/f.gz"] = body
    remote = fetch.RemoteFile("f.gz", server.url + "/f.gz", hashlib.sha256(body).hexdigest())
    fetch._fetch("test", remote, tmp_path / "f.gz", deadline_s=30)
    assert (tmp_path / "f.gz").read_bytes() == body
    assert [p.name for p in tmp_path.iterdir()] == ["f.gz"]


# -------------------------------------------------- cached files are checked


def _idx_gz(array: np.ndarray) -> bytes:
    """IDX bytes gzipped with a fixed mtime, so the same array gives the same bytes (and SHA-256)."""
    buf = io.BytesIO()
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        gz.write(header + array.astype(np.uint8).tobytes())
    return buf.getvalue()


@pytest.fixture
def fake_mnist(monkeypatch):
    """SOURCES['mnist'] replaced by four small IDX files; urlopen serves them and counts the calls."""
    rng = np.random.default_rng(5)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 6, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 3, dtype=np.uint8),
    }
    payloads = {name: _idx_gz(a) for name, a in arrays.items()}
    base = "https://example.invalid/mnist/"
    remotes = tuple(fetch.RemoteFile(n, base + n, hashlib.sha256(p).hexdigest()) for n, p in payloads.items())
    monkeypatch.setitem(fetch.SOURCES, "mnist", remotes)
    calls = []

    def urlopen(url, timeout=None):
        calls.append(url)
        return io.BytesIO(payloads[url[len(base):]])

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return types.SimpleNamespace(arrays=arrays, payloads=payloads, calls=calls)


def _corrupt_train_images(folder: Path) -> Path:
    """Replace the cached train images by a *valid* IDX file with other pixels: only the hash can tell."""
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(_idx_gz(np.zeros((6, 28, 28), np.uint8)))
    return path


def test_good_cache_is_read_without_network(tmp_path, fake_mnist):
    data.download("mnist", cache_dir=tmp_path)
    assert len(fake_mnist.calls) == 4
    ds = data.get_dataset("mnist", data_dir=tmp_path)
    np.testing.assert_array_equal(ds.images[:, 0], fake_mnist.arrays["train-images-idx3-ubyte.gz"])
    data.download("mnist", cache_dir=tmp_path)  # all four verified: nothing fetched again
    assert len(fake_mnist.calls) == 4


def test_corrupt_cached_file_is_an_error_without_download(tmp_path, fake_mnist):
    data.download("mnist", cache_dir=tmp_path)
    bad = _corrupt_train_images(tmp_path / "mnist")
    with pytest.raises(ValueError) as err:
        data.get_dataset("mnist", data_dir=tmp_path)
    message = str(err.value)
    assert message.startswith(f"{bad}: SHA-256 is {hashlib.sha256(bad.read_bytes()).hexdigest()}, expected "
                              f"{hashlib.sha256(fake_mnist.payloads[bad.name]).hexdigest()}")
    assert "delete it and pass --download" in message and "--data-dir" in message
    # the test split's files are fine, and only the split being read is checked
    assert len(data.get_dataset("mnist", data_dir=tmp_path, train=False)) == 3


def test_corrupt_cached_file_is_fetched_again_with_download(tmp_path, fake_mnist):
    data.download("mnist", cache_dir=tmp_path)
    bad = _corrupt_train_images(tmp_path / "mnist")
    with pytest.warns(UserWarning, match=f"{bad}: SHA-256 is .*downloading it again"):
        ds = data.get_dataset("mnist", data_dir=tmp_path, download=True)
    assert fake_mnist.calls[4:] == ["https://example.invalid/mnist/train-images-idx3-ubyte.gz"]
    np.testing.assert_array_equal(ds.images[:, 0], fake_mnist.arrays["train-images-idx3-ubyte.gz"])
    assert bad.read_bytes() == fake_mnist.payloads[bad.name]


def test_users_own_folder_is_not_hash_checked(tmp_path, fake_mnist):
    """Files the user brings (not the cache layout DIR/<name>/) may be any MNIST-format data (KMNIST, EMNIST...)."""
    for name, payload in fake_mnist.payloads.items():
        (tmp_path / name).write_bytes(payload)
    _corrupt_train_images(tmp_path)
    assert data.get_dataset("mnist", data_dir=tmp_path).images.max() == 0


def _cifar_archive(rng) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
            labels = rng.integers(0, 10, 2, dtype=np.uint8)
            pixels = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
            payload = np.concatenate([labels[:, None], pixels], axis=1).tobytes()
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def test_cifar10_batches_are_checked_against_the_unpacking_manifest(tmp_path, monkeypatch):
    archive = _cifar_archive(np.random.default_rng(1))
    remote = fetch.RemoteFile("cifar-10-binary.tar.gz", "https://example.invalid/c.tgz",
                              hashlib.sha256(archive).hexdigest())
    monkeypatch.setitem(fetch.SOURCES, "cifar10", (remote,))
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(archive))
    target = data.download("cifar10", cache_dir=tmp_path)
    manifest = fetch.cifar10_manifest(target)
    lines = manifest.read_text().splitlines()
    assert len(lines) == 6 and all(len(line.split("  ")[0]) == 64 for line in lines)
    assert not (target / remote.name).exists()  # the archive is deleted after unpacking
    assert fetch.cache_mismatches("cifar10", target) == []
    test_batch = target / "cifar-10-batches-bin" / "test_batch.bin"
    good = test_batch.read_bytes()
    test_batch.write_bytes(good[:1] + bytes([good[1] ^ 0xFF]) + good[2:])  # same size, one pixel changed
    with pytest.raises(ValueError, match=f"{test_batch}: SHA-256 is .*pass --download"):
        data.get_dataset("cifar10", data_dir=tmp_path, train=False)
    assert len(data.get_dataset("cifar10", data_dir=tmp_path, train=True)) == 10  # other split unaffected
    assert len(data.get_dataset("cifar10", data_dir=tmp_path, train=False, download=True)) == 2
    assert test_batch.read_bytes() == good
    manifest.write_text("garbage\n")
    with pytest.raises(ValueError, match="cifar-10-batches-bin.sha256"):
        data.get_dataset("cifar10", data_dir=tmp_path, train=False)


# ---------------------------------------------------------- fingerprints


def _dataset(n=100, size=8, seed=0):
    rng = np.random.default_rng(seed)
    return data.ImageDataset(rng.integers(0, 256, (n, 1, size, size), dtype=np.uint8),
                             rng.integers(0, 10, n), 10, "test")


def test_fingerprint_is_pinned_for_the_bundled_digits_and_a_toy():
    """Fixed values: the same on every machine and run (no hash(), no native byte order, no time)."""
    fp = data.dataset_fingerprint(data.get_dataset("mnist"))
    assert fp == {"count": 10000, "shape": [1, 28, 28],
                  "digest": "48b5c5095b1a1a63aef878c67147df9ebd185a205419a926b32aab4bfa0a9272"}
    assert json.loads(json.dumps(fp)) == fp
    assert data.dataset_fingerprint("ring8") == {
        "count": None, "shape": [2], "digest": "88efbc2149b3114439f51589cc07374c1ef454dc6b90f2af7708b1a3cac33a11"}


def test_fingerprint_changes_with_the_data():
    ds = _dataset()
    fp = data.dataset_fingerprint(ds)
    assert data.dataset_fingerprint(_dataset()) == fp  # an equal copy
    variants = {}
    variants["one image more"] = data.ImageDataset(np.concatenate([ds.images, ds.images[:1]]),
                                                   np.concatenate([ds.labels, ds.labels[:1]]), 10, "test")
    variants["one image fewer"] = data.ImageDataset(ds.images[:-1], ds.labels[:-1], 10, "test")
    sampled = [i * 99 // 63 for i in range(64)]
    for i in (0, sampled[17], 99):  # first, a middle sampled one, last
        changed = _dataset()
        changed.images[i, 0, 3, 4] ^= 1
        variants[f"image {i} changed"] = changed
    relabelled = _dataset()
    relabelled.labels[50] = (relabelled.labels[50] + 1) % 10
    variants["a label changed"] = relabelled
    variants["other size"] = _dataset(size=9)
    digests = {name: data.dataset_fingerprint(v)["digest"] for name, v in variants.items()}
    same = [name for name, d in digests.items() if d == fp["digest"]]
    assert same == [], f"fingerprint did not change for: {same}"
    assert len(set(digests.values())) == len(digests)
    unsampled = next(i for i in range(100) if i not in sampled)
    changed = _dataset()
    changed.images[unsampled] ^= 1
    assert data.dataset_fingerprint(changed) == fp  # by design: only the sampled images are read


def test_fingerprint_is_cheap_on_a_huge_dataset():
    """A million 3x64x64 images (12 GB, never materialised): only 64 of them are read."""
    huge = types.SimpleNamespace(images=np.broadcast_to(np.uint8(7), (10**6, 3, 64, 64)),
                                 labels=np.zeros(10**6, np.int64))
    start = time.perf_counter()
    fp = data.dataset_fingerprint(huge)
    assert time.perf_counter() - start < 1.0
    assert fp["count"] == 10**6 and fp["shape"] == [3, 64, 64]


def test_fingerprint_of_toys_is_the_name():
    digests = {name: data.dataset_fingerprint(name)["digest"] for name in data.TOY_DATASETS}
    assert len(set(digests.values())) == len(digests)
    assert data.dataset_fingerprint("gauss1d")["shape"] == [1]
    with pytest.raises(ValueError, match="'mnist' is not a toy dataset"):
        data.dataset_fingerprint("mnist")
    with pytest.raises(TypeError, match="expected an ImageDataset or a toy dataset name, got ndarray"):
        data.dataset_fingerprint(np.zeros((2, 1, 4, 4), np.uint8))


def test_fingerprint_of_tiny_datasets():
    one = _dataset(n=1)
    assert data.dataset_fingerprint(one)["count"] == 1
    empty = types.SimpleNamespace(images=np.zeros((0, 1, 8, 8), np.uint8), labels=np.zeros(0, np.int64))
    assert data.dataset_fingerprint(empty)["count"] == 0


# ------------------------------------------------------- image_size bounds


@pytest.fixture
def nothing_loaded(monkeypatch):
    """Every loader and the resize fail the test if called."""
    def forbidden(*args, **kwargs):
        raise AssertionError("nothing may be read or resized before image_size is validated")

    for name in ("resize_images", "load_bundled_mnist", "load_image_folder", "download_dataset"):
        monkeypatch.setattr(datasets, name, forbidden)
    monkeypatch.setattr(datasets, "_READERS", {k: forbidden for k in datasets._READERS})


@pytest.mark.parametrize("size", [1000, 257, 0, -3])
@pytest.mark.parametrize("name", ["mnist", "cifar10", "folder"])
def test_unreasonable_image_size_fails_fast(tmp_path, nothing_loaded, name, size):
    start = time.perf_counter()
    with pytest.raises(ValueError, match=rf"image_size \(--image-size\) must be in 1\.\.256 pixels, got {size}"):
        data.get_dataset(name, data_dir=tmp_path, image_size=size, download=True)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("size", [True, 32.0, 2.5, "64"])
def test_non_integer_image_size_is_named(nothing_loaded, size):
    with pytest.raises(ValueError, match=r"image_size \(--image-size\) must be a whole number of pixels in 1\.\.256"):
        data.get_dataset("mnist", image_size=size)


def test_image_size_that_would_not_fit_in_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "_memory_bytes", lambda: 20 * 2**20)  # a 20 MiB machine
    monkeypatch.setattr(datasets, "resize_images", lambda *a: pytest.fail("resized before the memory check"))
    with pytest.raises(ValueError) as err:
        data.get_dataset("mnist", image_size=64)
    assert str(err.value).startswith("image_size=64 (--image-size) would make dataset 'mnist' "
                                     "10,000 x 1 x 64 x 64 uint8 pixels = 39 MiB, more than half of this "
                                     "machine's memory (20 MiB); choose a smaller image_size")
    for i in range(3):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / f"{i}.png")
    monkeypatch.setattr(datasets, "load_image_folder", lambda *a, **k: pytest.fail("decoded before the check"))
    monkeypatch.setattr(datasets, "MAX_IMAGE_SIZE", 4096)  # past the size bound: the memory bound decides
    with pytest.raises(ValueError, match=r"'folder' 3 x 3 x 2048 x 2048 uint8 pixels = 36 MiB"):
        data.get_dataset("folder", data_dir=tmp_path, image_size=2048)


def test_reasonable_image_sizes_still_work(tmp_path):
    for i in range(2):
        Image.fromarray(np.full((10, 12, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    assert data.get_dataset("folder", data_dir=tmp_path, image_size=256).images.shape == (2, 3, 256, 256)
    assert data.get_dataset("folder", data_dir=tmp_path, image_size=np.int64(1)).image_size == 1
    assert data.get_dataset("mnist", image_size=32).images.shape == (10000, 1, 32, 32)


def test_loss_curves_log_axis_and_a_legend_beside_many_series(tmp_path):
    """logy=True puts the y axis on a log scale; more than six series put the legend outside the axes."""
    pytest.importorskip("matplotlib")
    from tinygan.viz import curves
    seen = {}
    real_close = curves._pyplot().close

    def spy_close(fig):
        ax = fig.axes[0]
        seen["yscale"], seen["legend_anchor"] = ax.get_yscale(), ax.get_legend()._bbox_to_anchor
        seen["styles"] = [line.get_linestyle() for line in ax.get_lines()]
        real_close(fig)

    plt = curves._pyplot()
    plt.close = spy_close
    try:
        curves.save_loss_curves([1, 2], {"a": [100.0, 10.0]}, tmp_path / "one.png", logy=True)
        assert seen["yscale"] == "log" and seen["legend_anchor"] is None
        many = {f"s{i}": [10.0 + i, 5.0 + i] for i in range(11)}
        curves.save_loss_curves([1, 2], many, tmp_path / "many.png")
        assert seen["yscale"] == "linear" and seen["legend_anchor"] is not None
        assert seen["styles"] == ["-"] * 10 + ["--"]
    finally:
        plt.close = real_close
