"""Download MNIST, Fashion-MNIST and CIFAR-10 into a local cache, verified.

Every file is checked against its published SHA-256 before it is kept:

* MNIST and Fashion-MNIST ``*.gz``: the SHA-256 sums TensorFlow Datasets and
  Keras record for the original files (torchvision publishes MD5s for the
  same bytes, e.g. ``f68b3c2dcbeaaa9fbdd348bbdeb94873`` for MNIST's
  ``train-images-idx3-ubyte.gz``).
* ``cifar-10-binary.tar.gz``: SHA-256 of the archive from the authors' page
  (which publishes the MD5 ``c32a1d4ab5d03f1284b67883e8d87530``).

Downloads are atomic (:func:`tinygan.io.atomic_write`): bytes go to a new
temporary file in the target folder and are renamed into place only once
complete and verified, so an interrupted download never leaves a half file
that looks finished.  Each file has an overall deadline (``deadline_s``,
default ``$TINYGAN_DOWNLOAD_DEADLINE`` or :data:`DEADLINE_S`) besides the
per-read socket timeout, so a server that trickles bytes forever fails too.

Files already in the cache are checked like fresh ones: the MNIST ``.gz``
files against :data:`SOURCES`, the unpacked CIFAR-10 batches against the
``cifar-10-batches-bin.sha256`` manifest written when the verified archive
was unpacked (:func:`cache_mismatches`).
"""
from __future__ import annotations

import hashlib
import http.client
import math
import os
import tarfile
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tinygan.io import atomic_write, atomic_write_text

from .formats import CIFAR10_RECORD_BYTES, CIFAR10_SUBDIR, CIFAR10_TEST_FILES, CIFAR10_TRAIN_FILES
from .integrity import sha256_file

TIMEOUT_S = 60  # per network read; a stalled server fails instead of hanging forever
DEADLINE_S = 1800.0  # per file, whole transfer: CIFAR-10's 163 MB at 0.1 MB/s still fits
DEADLINE_ENV = "TINYGAN_DOWNLOAD_DEADLINE"  # seconds; overrides DEADLINE_S when set
_CHUNK_BYTES = 1 << 20


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


def download_deadline(deadline_s: float | None = None) -> float:
    """The overall time limit of one file's download in seconds.

    ``deadline_s`` if given, else ``$TINYGAN_DOWNLOAD_DEADLINE`` if set, else
    :data:`DEADLINE_S`; ValueError (naming the source) unless it is a positive number.
    """
    source = "deadline_s"
    if deadline_s is None:
        env = os.environ.get(DEADLINE_ENV, "").strip()
        if not env:
            return DEADLINE_S
        source, deadline_s = DEADLINE_ENV, env
    try:
        value = float(deadline_s)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{source} must be a positive number of seconds, got {deadline_s!r}")
    return value


def download(name: str, cache_dir: str | Path | None = None, deadline_s: float | None = None) -> Path:
    """Fetch dataset ``name`` into ``cache_dir/name`` (if not there already) and return that folder.

    Files already there are kept only if their SHA-256 is right; a wrong one
    is reported (a warning naming it) and downloaded again.

    Args:
        name: ``"mnist"``, ``"fashion-mnist"`` or ``"cifar10"``.
        cache_dir: parent folder of the per-dataset folders; ``None`` means
            :func:`default_cache_dir`.
        deadline_s: overall time limit per file in seconds; ``None`` means
            :func:`download_deadline` (``$TINYGAN_DOWNLOAD_DEADLINE`` or 30 minutes).

    Returns:
        The folder holding the data: the four IDX ``.gz`` files for the
        MNISTs, or ``cifar-10-batches-bin/`` (unpacked) for CIFAR-10.  Pass
        it to ``load_mnist_dir`` / ``load_cifar10_dir``.

    Raises:
        ValueError: unknown ``name``, or a bad ``deadline_s`` / ``$TINYGAN_DOWNLOAD_DEADLINE``.
        RuntimeError: offline, server error, deadline passed, or a checksum
            mismatch; the message says how to put the files in place by hand.
    """
    if name not in SOURCES:
        raise ValueError(f"cannot download {name!r}: known datasets are {', '.join(SOURCES)}")
    deadline = download_deadline(deadline_s)
    target = Path(cache_dir if cache_dir is not None else default_cache_dir()).expanduser() / name
    target.mkdir(parents=True, exist_ok=True)
    if name == "cifar10":
        _download_cifar10(target, deadline)
    else:
        for remote in SOURCES[name]:
            _ensure_file(name, remote, target / remote.name, deadline)
    return target


# ------------------------------------------------------------ cache checks


@dataclass(frozen=True)
class Mismatch:
    """A cached file whose SHA-256 is not the recorded one."""

    path: Path
    actual: str
    expected: str

    def __str__(self) -> str:
        return f"{self.path}: SHA-256 is {self.actual}, expected {self.expected}"


def cifar10_manifest(folder: Path) -> Path:
    """``folder/cifar-10-batches-bin.sha256``: the batches' SHA-256 (``sha256sum -c`` format), written on unpacking."""
    return Path(folder) / f"{CIFAR10_SUBDIR}.sha256"


def _read_manifest(manifest: Path) -> dict[str, str]:
    """``{relative path: sha256}`` from a ``sha256sum``-style file; ValueError naming it if malformed."""
    sums = {}
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        digest, _, rel = line.partition("  ")
        if len(digest) != 64 or not rel:
            raise ValueError(f"{manifest} line {number}: expected '<sha256>  <file>', got {line!r}")
        sums[rel] = digest
    return sums


def _expected_hashes(name: str, folder: Path, train: bool | None) -> dict[Path, str]:
    """The files ``download(name)`` leaves in ``folder`` (the split ``train``; None: all) and their SHA-256."""
    if name == "cifar10":
        manifest = cifar10_manifest(folder)
        if not manifest.is_file():  # unpacked by hand: only the sizes can be checked (by the reader)
            return {}
        names = {True: CIFAR10_TRAIN_FILES, False: CIFAR10_TEST_FILES, None: CIFAR10_TRAIN_FILES + CIFAR10_TEST_FILES}
        sums = _read_manifest(manifest)
        return {folder / f"{CIFAR10_SUBDIR}/{n}": sums.get(f"{CIFAR10_SUBDIR}/{n}", "(not in the manifest)")
                for n in names[train]}
    prefix = {True: "train-", False: "t10k-", None: ""}[train]
    return {folder / r.name: r.sha256 for r in SOURCES[name] if r.name.startswith(prefix)}


def cache_mismatches(name: str, folder: str | Path, train: bool | None = None) -> list[Mismatch]:
    """Files in ``folder`` (``download(name)``'s folder) whose SHA-256 differs from the recorded one.

    Checks the MNIST/Fashion-MNIST ``.gz`` files against :data:`SOURCES`, and
    the CIFAR-10 batches against the manifest written when the verified
    archive was unpacked (no manifest: nothing to check).  Missing files are
    not mismatches (the reader reports them).  ``train`` picks the split's
    files, ``None`` all of them.
    """
    if name not in SOURCES:
        return []
    folder = Path(folder)
    try:
        expected = _expected_hashes(name, folder, train)
    except ValueError as err:  # a damaged manifest: treat the batches as unverifiable, i.e. bad
        return [Mismatch(cifar10_manifest(folder), f"unreadable ({err})", "a sha256sum manifest")]
    return [Mismatch(path, actual, digest) for path, digest in expected.items()
            if path.is_file() and (actual := sha256_file(path)) != digest]


def _report_and_refetch(mismatch: Mismatch) -> None:
    warnings.warn(f"{mismatch} (corrupt or modified cache file); downloading it again", stacklevel=4)


# ---------------------------------------------------------------- fetching


def _ensure_file(dataset: str, remote: RemoteFile, dest: Path, deadline_s: float | None = None) -> None:
    """Download ``remote`` to ``dest`` unless a copy with the right SHA-256 is already there."""
    if dest.is_file():
        actual = sha256_file(dest)
        if actual == remote.sha256:
            return
        _report_and_refetch(Mismatch(dest, actual, remote.sha256))
    _fetch(dataset, remote, dest, deadline_s)


def _fetch(dataset: str, remote: RemoteFile, dest: Path, deadline_s: float | None = None) -> None:
    """Stream ``remote.url`` into a new temp file next to ``dest``, verify, then rename it to ``dest``.

    Fails (RuntimeError naming the URL) when the whole transfer takes longer
    than ``deadline_s`` (``None``: :func:`download_deadline`), checked after
    every read; one read waits at most ``min(TIMEOUT_S, deadline_s)``.
    """
    deadline = download_deadline(deadline_s)
    hint = f"download it by hand into {dest.parent} or pass --data-dir"
    start = time.monotonic()
    received = 0
    digest = hashlib.sha256()
    with atomic_write(dest) as out:  # any error below removes the temp file; dest is untouched
        try:
            with urllib.request.urlopen(remote.url, timeout=min(TIMEOUT_S, deadline)) as response:
                read = getattr(response, "read1", response.read)  # read1: what has arrived, not a full 1 MiB
                for chunk in iter(lambda: read(_CHUNK_BYTES), b""):
                    digest.update(chunk)
                    out.write(chunk)
                    received += len(chunk)
                    if time.monotonic() - start > deadline:
                        raise TimeoutError(
                            f"not finished within the {deadline:g} s deadline ({received:,} bytes received); "
                            f"for a slow connection set {DEADLINE_ENV}=<seconds>"
                        )
                announced = _content_length(response)
                if announced is not None and received != announced:
                    raise ConnectionError(f"connection closed after {received:,} of {announced:,} bytes")
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
            # URLError, timeouts and ConnectionError are OSErrors; IncompleteRead is an HTTPException
            reason = getattr(err, "reason", err)
            raise RuntimeError(f"could not download {dataset} from {remote.url}: {reason}; {hint}") from err
        if digest.hexdigest() != remote.sha256:
            raise RuntimeError(
                f"downloaded {remote.url} but its SHA-256 is {digest.hexdigest()}, expected "
                f"{remote.sha256} (corrupt transfer or changed file); {hint}"
            )


def _content_length(response) -> int | None:
    """The body size the server announced (Content-Length), or None."""
    headers = getattr(response, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _cifar10_complete(target: Path) -> bool:
    """True when all six CIFAR-10 batches are in ``target/cifar-10-batches-bin`` with the full
    10,000 records each and (when the unpacking manifest is there) the right SHA-256; a wrong one is reported."""
    batches = target / CIFAR10_SUBDIR
    expected = 10_000 * CIFAR10_RECORD_BYTES
    names = CIFAR10_TRAIN_FILES + CIFAR10_TEST_FILES
    if not all((batches / n).is_file() and (batches / n).stat().st_size == expected for n in names):
        return False
    bad = cache_mismatches("cifar10", target)
    for mismatch in bad:
        _report_and_refetch(mismatch)
    return not bad


def _download_cifar10(target: Path, deadline_s: float | None = None) -> None:
    """Fetch the binary archive, unpack its six batch files and their manifest, then delete the archive."""
    if _cifar10_complete(target):
        return
    (remote,) = SOURCES["cifar10"]
    archive = target / remote.name
    _ensure_file("cifar10", remote, archive, deadline_s)
    sums = _extract_cifar10(archive, target / CIFAR10_SUBDIR)
    atomic_write_text(cifar10_manifest(target),
                      "".join(f"{digest}  {CIFAR10_SUBDIR}/{n}\n" for n, digest in sorted(sums.items())))
    archive.unlink()


def _extract_cifar10(archive: Path, batches: Path) -> dict[str, str]:
    """Copy only the expected ``cifar-10-batches-bin/*.bin`` members out of ``archive``.

    Member names are matched exactly rather than trusting paths in the
    archive, so a malicious tar cannot write outside ``batches``.

    Returns:
        ``{batch file name: SHA-256}`` of the files written.
    """
    wanted = {f"{CIFAR10_SUBDIR}/{n}": n for n in CIFAR10_TRAIN_FILES + CIFAR10_TEST_FILES}
    batches.mkdir(parents=True, exist_ok=True)
    sums = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            key = str(PurePosixPath(member.name))
            if key not in wanted or not member.isfile():
                continue
            with tar.extractfile(member) as src:
                sums[wanted[key]] = _copy_atomically(src, batches / wanted[key])
    missing = sorted(k for k, n in wanted.items() if n not in sums)
    if missing:
        raise RuntimeError(f"{archive} lacks {', '.join(missing)}; it is not the CIFAR-10 binary archive")
    return sums


def _copy_atomically(src, dest: Path) -> str:
    """Copy the open binary file ``src`` to ``dest`` atomically; returns the SHA-256 of the bytes copied."""
    digest = hashlib.sha256()
    with atomic_write(dest) as out:
        for chunk in iter(lambda: src.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()
