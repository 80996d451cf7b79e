"""Checkpoints are validated before anything is built from them: a small crafted or damaged file ends in a
message, never in a large allocation, a crash deep inside, or a silently wrong model."""
from __future__ import annotations

import io
import json
import tracemalloc
import zipfile

import numpy as np
import pytest

from tinygan.run import CheckpointError, TrainConfig, Trainer, load_generator, resume, train


def _tiny(tmp_path, name="run", **kw):
    return TrainConfig(**{**dict(steps=2, batch_size=8, ngf=8, ndf=8, nz=16, out=str(tmp_path / name),
                                 sample_every=100, checkpoint_every=100, progress=False), **kw})


@pytest.fixture
def saved(tmp_path):
    train(_tiny(tmp_path))
    return tmp_path / "run" / "checkpoint.npz"


def _entries(path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _generator_prefix(entries: dict) -> str:
    """The entries ``load_generator`` reads: the average of G's weights where the run kept one (--ema)."""
    return "Gema/" if any(k.startswith("Gema/") for k in entries) else "G/"


def _rewrite(path, entries: dict, raw: dict | None = None) -> None:
    """Write ``entries`` as an .npz at ``path``, plus ``raw`` .npy members given as bytes."""
    np.savez(path, **entries)
    if raw:
        with zipfile.ZipFile(path, "a") as zf:
            for name, data in raw.items():
                zf.writestr(name + ".npy", data)


def _json_entry(obj) -> np.ndarray:
    return np.frombuffer(json.dumps(obj).encode(), np.uint8)


def test_a_crafted_config_is_refused_before_any_network_is_built(saved, tmp_path):
    e = _entries(saved)
    config = json.loads(e["config.json"].tobytes())
    e["config.json"] = _json_entry({**config, "ngf": 10**6})
    _rewrite(tmp_path / "big.npz", e)
    assert (tmp_path / "big.npz").stat().st_size < 1 << 20
    tracemalloc.start()
    with pytest.raises(CheckpointError, match="--ngf: must be an integer in"):
        load_generator(tmp_path / "big.npz")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 * 2**20


def test_an_array_header_claiming_gigabytes_is_refused_unread(saved, tmp_path):
    e = _entries(saved)
    key = next(k for k in e if k.startswith(_generator_prefix(e)) and e[k].ndim == 4)
    del e[key]
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (50000, 50000)})
    _rewrite(tmp_path / "bomb.npz", e, raw={key: header.getvalue() + b"\0" * 64})
    tracemalloc.start()
    with pytest.raises(CheckpointError, match=r"has shape \(50000, 50000\), the model built from its config expects"):
        load_generator(tmp_path / "bomb.npz")
    assert tracemalloc.get_traced_memory()[1] < 50 * 2**20
    tracemalloc.stop()


@pytest.mark.parametrize("change,match", [
    (lambda m: {**m, "format_version": 1}, "format version 1"),
    (lambda m: {**m, "shapes": {"image_shape": [1, 28, 10**6], "data_dim": None, "num_classes": 10}},
     "recorded network shapes"),
    (lambda m: {**m, "shapes": "nope"}, "recorded network shapes"),
    (lambda m: {k: v for k, v in m.items() if k != "shapes"}, "recorded network shapes"),
])
def test_malformed_meta_is_named(saved, tmp_path, change, match):
    e = _entries(saved)
    e["meta.json"] = _json_entry(change(json.loads(e["meta.json"].tobytes())))
    _rewrite(tmp_path / "m.npz", e)
    with pytest.raises(CheckpointError, match=match):
        load_generator(tmp_path / "m.npz")


def test_meta_that_is_not_json_or_too_long(saved, tmp_path):
    e = _entries(saved)
    e["meta.json"] = np.frombuffer(b"{not json", np.uint8)
    _rewrite(tmp_path / "a.npz", e)
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_generator(tmp_path / "a.npz")
    e["meta.json"] = np.zeros(2 << 20, np.uint8)
    _rewrite(tmp_path / "b.npz", e)
    with pytest.raises(CheckpointError, match="JSON text of at most"):
        load_generator(tmp_path / "b.npz")


def test_object_arrays_are_never_unpickled(saved, tmp_path):
    e = _entries(saved)
    key = next(k for k in e if k.startswith(_generator_prefix(e)))
    e[key] = np.array([{"evil": 1}], dtype=object)
    np.savez(tmp_path / "o.npz", **{k: v for k, v in e.items()})
    with pytest.raises(CheckpointError, match="Python objects"):
        load_generator(tmp_path / "o.npz")


@pytest.mark.parametrize("part", ["optG", "G", "rng"])
def test_resume_validates_the_optimizer_state_weights_and_random_state(saved, tmp_path, part):
    e = _entries(saved)
    meta = json.loads(e["meta.json"].tobytes())
    if part == "optG":
        key = next(k for k in e if k.startswith("optG/"))
        e[key] = np.zeros(3, np.float32)                             # wrong shape for its parameter
        match = "shape"
    elif part == "G":
        del e[next(k for k in e if k.startswith("G/"))]
        match = "missing"
    else:
        meta["rng"] = {"bit_generator": "PCG64", "state": "nope"}
        match = "random-number state is malformed"
    e["meta.json"] = _json_entry(meta)
    _rewrite(saved, e)
    with pytest.raises(CheckpointError, match=match):
        resume(saved.parent, steps=4)


def test_optimizer_hyper_parameters_must_be_finite_numbers(saved):
    e = _entries(saved)
    meta = json.loads(e["meta.json"].tobytes())
    meta["optG"]["param_groups"][0]["lr"] = "fast"
    e["meta.json"] = _json_entry(meta)
    _rewrite(saved, e)
    with pytest.raises(CheckpointError, match="hyper-parameter 'lr'"):
        resume(saved.parent, steps=4)


def test_a_checkpoint_from_another_shape_of_network(tmp_path):
    train(_tiny(tmp_path, "a"))
    t = Trainer(_tiny(tmp_path, "b", ngf=16))
    from tinygan.run import CheckpointFile
    with CheckpointFile(tmp_path / "a" / "checkpoint.npz") as ck:
        with pytest.raises(CheckpointError, match="the model built from its config expects"):
            t.restore(ck)
