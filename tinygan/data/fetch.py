"""Download MNIST, Fashion-MNIST and CIFAR-10 into a local cache, verified.

Every file is checked against its published SHA-256 before it is kept:

* MNIST and Fashion-MNIST ``*.gz``: the SHA-256 sums TensorFlow Datasets and
  Keras record for the original files (torchvision publishes MD5s for the
  same bytes, e.g. ``f68b3c2dcbeaaa9fbdd348bbdeb94873`` for MNIST's
  ``train-images-idx3-ubyte.gz``).
* ``cifar-10-binary.tar.gz``: SHA-256 of the archive from the authors' page
  (which publishes the MD5 ``c32a1d4ab5d03f1284b67883e8d87530``).

Downloads are atomic: bytes go to a temporary file in the target folder
and are renamed into place only once complete and verified, so an
interrupted download never leaves a half file that looks finished.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .formats import CIFAR10_RECORD_BYTES, CIFAR10_SUBDIR, CIFAR10_TEST_FILES, CIFAR10_TRAIN_FILES
from .integrity import sha256_file

TIMEOUT_S = 60  # per network read; a stalled server fails instead of hanging forever


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch: its name in the cache, URL and SHA-256."""

    name: str
    url: str
    sha256: str


_MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # torchvision's mirror
_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"  # Zalando's (HTTP only; SHA-256 checked)
_CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"

SOURCES: dict[str, tuple[RemoteFile, ...]] = {
    "mnist": (
        RemoteFile("train-images-idx3-ubyte.gz", _MNIST_URL + "train-images-idx3-ubyte.gz",
                   "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        RemoteFile("train-labels-idx1-ubyte.gz", _MNIST_URL + "train-labels-idx1-ubyte.gz",
                   "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        RemoteFile("t10k-images-idx3-ubyte.gz", _MNIST_URL + "t10k-images-idx3-ubyte.gz",
                   "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", _MNIST_URL + "t10k-labels-idx1-ubyte.gz",
                   "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    ),
    "fashion-mnist": (
        RemoteFile("train-images-idx3-ubyte.gz", _FASHION_URL + "train-images-idx3-ubyte.gz",
                   "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
        RemoteFile("train-labels-idx1-ubyte.gz", _FASHION_URL + "train-labels-idx1-ubyte.gz",
                   "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
        RemoteFile("t10k-images-idx3-ubyte.gz", _FASHION_URL + "t10k-images-idx3-ubyte.gz",
                   "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", _FASHION_URL + "t10k-labels-idx1-ubyte.gz",
                   "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
    ),
    "cifar10": (
        RemoteFile("cifar-10-binary.tar.gz", _CIFAR10_URL,
                   "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"),
    ),
}
"""Dataset name -> the files ``download`` fetches for it."""


def default_cache_dir() -> Path:
    """``$TINYGAN_CACHE`` if set, else ``~/.cache/tinygan``: where downloads go unless a ``cache_dir`` is given."""
    env = os.environ.get("TINYGAN_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "tinygan"


def download(name: str, cache_dir: str | Path | None = None) -> Path:
    """Fetch dataset ``name`` into ``cache_dir/name`` (if not there already) and return that folder.

    Args:
        name: ``"mnist"``, ``"fashion-mnist"`` or ``"cifar10"``.
        cache_dir: parent folder of the per-dataset folders; ``None`` means
            :func:`default_cache_dir`.

    Returns:
        The folder holding the data: the four IDX ``.gz`` files for the
        MNISTs, or ``cifar-10-batches-bin/`` (unpacked) for CIFAR-10.  Pass
        it to ``load_mnist_dir`` / ``load_cifar10_dir``.

    Raises:
        ValueError: unknown ``name``.
        RuntimeError: offline, server error, or a checksum mismatch; the
            message says how to put the files in place by hand.
    """
    if name not in SOURCES:
        raise ValueError(f"cannot download {name!r}: known datasets are {', '.join(SOURCES)}")
    target = Path(cache_dir if cache_dir is not None else default_cache_dir()).expanduser() / name
    target.mkdir(parents=True, exist_ok=True)
    if name == "cifar10":
        _download_cifar10(target)
    else:
        for remote in SOURCES[name]:
            _ensure_file(name, remote, target / remote.name)
    return target


def _ensure_file(dataset: str, remote: RemoteFile, dest: Path) -> None:
    """Download ``remote`` to ``dest`` unless a copy with the right SHA-256 is already there."""
    if dest.is_file() and sha256_file(dest) == remote.sha256:
        return
    _fetch(dataset, remote, dest)


def _fetch(dataset: str, remote: RemoteFile, dest: Path) -> None:
    """Stream ``remote.url`` into a temp file next to ``dest``, verify, then rename it to ``dest``."""
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".tmp", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(remote.url, timeout=TIMEOUT_S) as response:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    digest.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, OSError, ValueError) as err:  # URLError/timeouts are OSErrors
            reason = getattr(err, "reason", err)
            raise RuntimeError(
                f"could not download {dataset} from {remote.url}: {reason}; "
                f"download it by hand into {dest.parent} or pass --data-dir"
            ) from err
        if digest.hexdigest() != remote.sha256:
            raise RuntimeError(
                f"downloaded {remote.url} but its SHA-256 is {digest.hexdigest()}, expected "
                f"{remote.sha256} (corrupt transfer or changed file); download it by hand into "
                f"{dest.parent} or pass --data-dir"
            )
        os.replace(tmp, dest)  # atomic on POSIX and Windows within one folder
    finally:
        tmp.unlink(missing_ok=True)


def _cifar10_complete(folder: Path) -> bool:
    """True when all six CIFAR-10 batches are present with the full 10,000 records each."""
    expected = 10_000 * CIFAR10_RECORD_BYTES
    names = CIFAR10_TRAIN_FILES + CIFAR10_TEST_FILES
    return all((folder / n).is_file() and (folder / n).stat().st_size == expected for n in names)


def _download_cifar10(target: Path) -> None:
    """Fetch the binary archive, unpack its six batch files, then delete the archive."""
    batches = target / CIFAR10_SUBDIR
    if _cifar10_complete(batches):
        return
    (remote,) = SOURCES["cifar10"]
    archive = target / remote.name
    _ensure_file("cifar10", remote, archive)
    _extract_cifar10(archive, batches)
    archive.unlink()


def _extract_cifar10(archive: Path, batches: Path) -> None:
    """Copy only the expected ``cifar-10-batches-bin/*.bin`` members out of ``archive``.

    Member names are matched exactly rather than trusting paths in the
    archive, so a malicious tar cannot write outside ``batches``.
    """
    wanted = {f"{CIFAR10_SUBDIR}/{n}": n for n in CIFAR10_TRAIN_FILES + CIFAR10_TEST_FILES}
    batches.mkdir(parents=True, exist_ok=True)
    found = set()
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            key = str(PurePosixPath(member.name))
            if key not in wanted or not member.isfile():
                continue
            with tar.extractfile(member) as src:
                _copy_atomically(src, batches / wanted[key])
            found.add(key)
    missing = sorted(set(wanted) - found)
    if missing:
        raise RuntimeError(f"{archive} lacks {', '.join(missing)}; it is not the CIFAR-10 binary archive")


def _copy_atomically(src, dest: Path) -> None:
    """Copy the open binary file ``src`` to ``dest`` via a temp file and a rename."""
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(src, out)
        os.replace(tmp_name, dest)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
