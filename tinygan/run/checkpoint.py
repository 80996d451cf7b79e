"""Checkpoints: one ``.npz`` file, no pickle, written atomically, validated before anything is built from it.

Layout of the archive (every entry a plain array; ``np.load(..., allow_pickle=False)`` reads it):

============================  ===============================================
key                           content
============================  ===============================================
``meta.json``                 JSON text: format version, step, data position and fingerprint, RNG states,
                              the optimizers' hyper-parameters and scalar state
``config.json``               JSON text: the run's resolved :class:`~tinygan.run.config.TrainConfig`
``G/<state_dict key>``        generator parameters and buffers
``D/<state_dict key>``        discriminator parameters and buffers
``Gema/<state_dict key>``     with ``--ema``: the average of the generator's weights (what samples use)
``optG/<index>/<name>``       generator optimizer state arrays (Adam's ``exp_avg``, ...)
``optD/<index>/<name>``       discriminator optimizer state arrays
``fixed/<name>``              the fixed sampling inputs (``z``, and labels or codes if any)
============================  ===============================================

Writing goes through :func:`tinygan.io.atomic_write` (a new temporary file in
the same folder, flushed, renamed over the target), so a run killed at any
moment leaves the previous checkpoint whole.  A checkpoint holding a NaN or
infinite value is never written.

Reading is lazy and checked in order, so a crafted or damaged file fails
with a message instead of allocating or crashing: the two JSON entries are
size-bounded and parsed; the config passes :meth:`TrainConfig.validate`
(which bounds every size); each array's header (shape, dtype) is compared
with what the model built from that config expects *before* the array is read.
``sample``, ``interpolate`` and ``eval`` read only the generator's entries.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from tinygan.io import atomic_write
from tinygan.run.config import ConfigError, TrainConfig

__all__ = ["FORMAT_VERSION", "CheckpointError", "CheckpointFile", "save_checkpoint", "load_checkpoint",
           "flatten_optimizer_state", "unflatten_optimizer_state"]

FORMAT_VERSION = 2
MAX_JSON_BYTES = 1 << 20            # meta.json / config.json: far more than any real run needs


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, foreign, or does not fit the run."""


def _text(s: str) -> np.ndarray:
    return np.frombuffer(s.encode("utf-8"), dtype=np.uint8)


# ----------------------------------------------------------------------------- writing

def flatten_optimizer_state(prefix: str, state_dict: dict, arrays: dict) -> dict:
    """Move an optimizer state_dict's arrays into ``arrays``; return the JSON-able remainder."""
    scalars: dict[str, dict] = {}
    for idx, st in state_dict["state"].items():
        for name, value in st.items():
            if isinstance(value, np.ndarray):
                arrays[f"{prefix}/{idx}/{name}"] = value
            else:
                scalars.setdefault(str(idx), {})[name] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state_dict["param_groups"]]
    return {"param_groups": groups, "scalars": scalars}


def unflatten_optimizer_state(prefix: str, meta: dict, arrays: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for idx, scal in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(scal)
    for key, value in arrays.items():
        if key.startswith(prefix + "/"):
            _, idx, name = key.split("/", 2)
            state.setdefault(int(idx), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(path, *, config: dict, meta: dict, generator: dict, discriminator: dict,
                    opt_g: dict, opt_d: dict, fixed: dict, generator_ema: dict | None = None) -> Path:
    """Write a checkpoint atomically (layout in the module docstring); refuses non-finite values."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    for k, v in generator.items():
        arrays[f"G/{k}"] = np.asarray(v)
    for k, v in discriminator.items():
        arrays[f"D/{k}"] = np.asarray(v)
    for k, v in (generator_ema or {}).items():
        arrays[f"Gema/{k}"] = np.asarray(v)
    meta = dict(meta, format_version=FORMAT_VERSION,
                optG=flatten_optimizer_state("optG", opt_g, arrays),
                optD=flatten_optimizer_state("optD", opt_d, arrays))
    for k, v in fixed.items():
        arrays[f"fixed/{k}"] = np.asarray(v)
    bad = [k for k, a in arrays.items() if a.dtype.kind == "f" and not np.isfinite(a).all()]
    if bad:
        raise CheckpointError(f"refusing to write {path}: {', '.join(bad[:5])} hold NaN or infinite values")
    arrays["meta.json"] = _text(json.dumps(meta))
    arrays["config.json"] = _text(json.dumps(config))
    with atomic_write(path) as f:     # readers see the old file or the new one, never half of one
        np.savez(f, **arrays)
    return path


# ----------------------------------------------------------------------------- reading

class CheckpointFile:
    """A checkpoint opened for checked, lazy reading.

    ``meta`` and ``config`` (a validated :class:`TrainConfig`) are read at
    once; arrays only when asked for, each after its header has been checked.
    """

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"checkpoint {self.path} does not exist")
        try:
            self._zip = zipfile.ZipFile(self.path)
            self.names = {n[:-4] for n in self._zip.namelist() if n.endswith(".npy")}
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            raise CheckpointError(f"checkpoint {self.path} is truncated or corrupt and cannot be read ({e}); "
                                  "use an earlier checkpoint or start a new run") from None
        if "meta.json" not in self.names or "config.json" not in self.names:
            raise CheckpointError(f"checkpoint {self.path} is not a tinygan checkpoint (no meta.json/config.json)")
        self.meta = self._json("meta.json")
        if not isinstance(self.meta, dict):
            raise CheckpointError(f"checkpoint {self.path}: meta.json is not a JSON object")
        version = self.meta.get("format_version")
        if version != FORMAT_VERSION:
            raise CheckpointError(f"checkpoint {self.path} has format version {version}; this tinygan reads "
                                  f"version {FORMAT_VERSION} (it was written by another tinygan version)")
        try:
            self.config = TrainConfig.from_dict(self._json("config.json"), source=f"checkpoint {self.path}")
        except ConfigError as e:
            raise CheckpointError(str(e)) from None

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> "CheckpointFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ low level
    def _fail(self, what: str):
        raise CheckpointError(f"checkpoint {self.path}: {what}")

    def header(self, key: str) -> tuple[tuple[int, ...], np.dtype]:
        """(shape, dtype) of entry ``key`` from its .npy header, without reading the data."""
        if key not in self.names:
            self._fail(f"entry {key!r} is missing")
        try:
            with self._zip.open(key + ".npy") as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                elif version in ((2, 0), (3, 0)):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise ValueError(f"unknown .npy version {version}")
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            self._fail(f"entry {key!r} is unreadable ({e})")
        if dtype.hasobject:
            self._fail(f"entry {key!r} holds Python objects; tinygan checkpoints never do")
        return tuple(int(s) for s in shape), dtype

    def array(self, key: str, shape: tuple | None = None, kinds: str = "f",
              max_bytes: int = 1 << 34) -> np.ndarray:
        """Entry ``key``, after checking its header: ``shape`` (if given), dtype kind in ``kinds``, size."""
        got, dtype = self.header(key)
        if shape is not None and got != tuple(shape):
            self._fail(f"entry {key!r} has shape {got}, the model built from its config expects {tuple(shape)}")
        if dtype.kind not in kinds:
            self._fail(f"entry {key!r} has dtype {dtype}, expected a {'float' if kinds == 'f' else kinds} array")
        if int(np.prod(got, dtype=np.int64)) * dtype.itemsize > max_bytes:
            self._fail(f"entry {key!r} declares {got} {dtype}, larger than any tinygan checkpoint holds")
        try:
            with self._zip.open(key + ".npy") as f:
                return np.lib.format.read_array(f, allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            self._fail(f"entry {key!r} is truncated or corrupt ({e})")

    def _json(self, key: str) -> Any:
        shape, dtype = self.header(key)
        if len(shape) != 1 or dtype != np.uint8 or shape[0] > MAX_JSON_BYTES:
            self._fail(f"entry {key!r} is not JSON text of at most {MAX_JSON_BYTES} bytes")
        try:
            return json.loads(self.array(key, kinds="u").tobytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            self._fail(f"entry {key!r} is not valid JSON ({e})")

    # ------------------------------------------------------------------ parts
    def state_dict(self, prefix: str, expected: dict) -> dict:
        """The ``prefix/`` entries as a state_dict, checked key by key against ``expected`` (a model's)."""
        found = {n[len(prefix) + 1:] for n in self.names if n.startswith(prefix + "/")}
        missing, unexpected = sorted(set(expected) - found), sorted(found - set(expected))
        if missing or unexpected:
            self._fail(f"{prefix} does not match the model its config builds: missing {missing[:5]}, "
                       f"unexpected {unexpected[:5]}")
        return {k: self.array(f"{prefix}/{k}", np.shape(v), kinds="f" if np.asarray(v).dtype.kind == "f" else "iu")
                for k, v in expected.items()}

    def fixed_inputs(self, expected: dict) -> dict:
        """The fixed sampling inputs, checked against ``expected`` (what the generator draws) for keys and kinds."""
        out = {}
        for k, v in expected.items():
            shape, _ = self.header(f"fixed/{k}")
            if shape[1:] != np.shape(v)[1:] or not 1 <= (shape[0] if shape else 0) <= 4096:
                self._fail(f"fixed/{k} has shape {shape}, the generator draws {np.shape(v)[1:]} per sample")
            out[k] = self.array(f"fixed/{k}", kinds="f" if np.asarray(v).dtype.kind == "f" else "iu")
        return out

    def optimizer_state(self, prefix: str, opt) -> dict:
        """``opt``'s saved state_dict, checked against ``opt``'s parameters (count, shapes, hyper-parameter keys)."""
        saved = self.meta.get(prefix)
        if not isinstance(saved, dict) or not isinstance(saved.get("param_groups"), list) \
                or not isinstance(saved.get("scalars"), dict):
            self._fail(f"the optimizer state {prefix} is missing (a weights-only file cannot be resumed)")
        params = [p for g in opt.param_groups for p in g["params"]]
        groups = saved["param_groups"]
        if len(groups) != len(opt.param_groups):
            self._fail(f"{prefix} has {len(groups)} parameter groups, the optimizer {len(opt.param_groups)}")
        for g_saved, g in zip(groups, opt.param_groups):
            if not isinstance(g_saved, dict) or set(g_saved) != set(g) or \
                    not isinstance(g_saved["params"], list) or len(g_saved["params"]) != len(g["params"]):
                self._fail(f"{prefix}: a parameter group does not match the optimizer's "
                           f"(keys {sorted(g)}, {len(g['params'])} parameters)")
            for k, v in g_saved.items():
                if k != "params" and not _finite_numbers(v):
                    self._fail(f"{prefix}: hyper-parameter {k!r} = {v!r} is not a finite number")
        arrays = {}
        for name in self.names:
            if name.startswith(prefix + "/"):
                parts = name.split("/")
                if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) >= len(params):
                    self._fail(f"entry {name!r} names no parameter of the optimizer")
                arrays[name] = self.array(name, params[int(parts[1])].shape, kinds="f")
        for idx, scal in saved["scalars"].items():
            if not str(idx).isdigit() or int(idx) >= len(params) or not isinstance(scal, dict) \
                    or not all(_finite_numbers(v) for v in scal.values()):
                self._fail(f"{prefix}: scalar state {idx!r} is malformed")
        return unflatten_optimizer_state(prefix, saved, arrays)


def _finite_numbers(v) -> bool:
    if isinstance(v, bool):
        return True
    if isinstance(v, (int, float)):
        return bool(np.isfinite(v))
    if isinstance(v, list):
        return all(_finite_numbers(x) for x in v)
    return v is None


def load_checkpoint(path) -> dict:
    """Everything a checkpoint holds, read without building a model (for tests and tools).

    Returns ``{"config", "meta", "generator", "discriminator", "opt_g", "opt_d", "fixed"}`` with the
    config as a plain dict; arrays are read as stored (headers checked for dtype, not against a model).
    """
    with CheckpointFile(path) as ck:
        part = lambda p, kinds="fiu": {n[len(p) + 1:]: ck.array(n, kinds=kinds)  # noqa: E731
                                     for n in sorted(ck.names) if n.startswith(p + "/")}
        arrays = {n: ck.array(n) for n in ck.names if n.startswith(("optG/", "optD/"))}
        return {"config": ck.config.to_dict(), "meta": ck.meta, "generator": part("G"),
                "discriminator": part("D"), "generator_ema": part("Gema"),
                "opt_g": unflatten_optimizer_state("optG", ck.meta["optG"], arrays),
                "opt_d": unflatten_optimizer_state("optD", ck.meta["optD"], arrays),
                "fixed": part("fixed")}
