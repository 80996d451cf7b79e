"""Checkpoints: one ``.npz`` file, no pickle, written atomically.

Layout of the archive (every entry a plain array; ``np.load(..., allow_pickle=False)`` reads it):

============================  ===============================================
key                           content
============================  ===============================================
``meta.json``                 JSON text: format version, step, data position, RNG states, optimizer
                              hyper-parameters and scalar state, names of the other entries
``config.json``               JSON text: the run's configuration (enough to rebuild the models)
``G/<state_dict key>``        generator parameters and buffers
``D/<state_dict key>``        discriminator parameters and buffers
``optG/<index>/<name>``       generator optimizer state arrays (Adam's ``exp_avg``, ...)
``optD/<index>/<name>``       discriminator optimizer state arrays
``fixed/<name>``              the fixed sampling inputs (``z``, and labels or codes if any)
============================  ===============================================

Writing goes to ``<path>.tmp`` in the same folder, is flushed to disk, then
renamed over ``path`` (``os.replace`` is atomic on POSIX and Windows), so a
run killed at any moment leaves the previous checkpoint whole.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1


def _text(s: str) -> np.ndarray:
    return np.frombuffer(s.encode("utf-8"), dtype=np.uint8)


def _read_text(a: np.ndarray) -> str:
    return a.tobytes().decode("utf-8")


def flatten_optimizer_state(prefix: str, state_dict: dict, arrays: dict) -> dict:
    """Move an optimizer state_dict's arrays into ``arrays``; return the JSON-able remainder."""
    scalars = {}
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
                    opt_g: dict, opt_d: dict, fixed: dict) -> Path:
    """Write a checkpoint atomically (see the module docstring for the layout)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    for k, v in generator.items():
        arrays[f"G/{k}"] = np.asarray(v)
    for k, v in discriminator.items():
        arrays[f"D/{k}"] = np.asarray(v)
    meta = dict(meta, format_version=FORMAT_VERSION,
                optG=flatten_optimizer_state("optG", opt_g, arrays),
                optD=flatten_optimizer_state("optD", opt_d, arrays))
    for k, v in fixed.items():
        arrays[f"fixed/{k}"] = np.asarray(v)
    arrays["meta.json"] = _text(json.dumps(meta))
    arrays["config.json"] = _text(json.dumps(config))
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic: readers see the old file or the new one, never half of one
    finally:
        if tmp.exists():       # a write that failed part way: drop the fragment, keep the old checkpoint
            tmp.unlink()
    return path


def load_checkpoint(path) -> dict:
    """Read a checkpoint; a clear ValueError for a missing, truncated or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise ValueError(f"checkpoint {path} is truncated or corrupt and cannot be read ({e}); "
                         "use an earlier checkpoint or start a new run") from None
    if "meta.json" not in arrays or "config.json" not in arrays:
        raise ValueError(f"checkpoint {path} is not a tinygan checkpoint (no meta.json/config.json entries)")
    meta = json.loads(_read_text(arrays.pop("meta.json")))
    config = json.loads(_read_text(arrays.pop("config.json")))
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"checkpoint {path} has format version {meta.get('format_version')}, "
                         f"this tinygan reads version {FORMAT_VERSION}")
    part = lambda p: {k[len(p) + 1:]: v for k, v in arrays.items() if k.startswith(p + "/")}  # noqa: E731
    return {
        "config": config,
        "meta": meta,
        "generator": part("G"),
        "discriminator": part("D"),
        "opt_g": unflatten_optimizer_state("optG", meta["optG"], arrays),
        "opt_d": unflatten_optimizer_state("optD", meta["optD"], arrays),
        "fixed": part("fixed"),
    }
