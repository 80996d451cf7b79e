"""PacGAN's packing (``tinygan.gan.pack``, ``--pack M``): shapes, equality with the inner D on the
concatenated input, float64 gradients through the wrapper, a training step for MLP and DCGAN with
each loss family and penalty, and the refusals (batch not a multiple of M, conditional models)."""
from __future__ import annotations

import numpy as np
import pytest

import tinygan
from tinygan.cli import main
from tinygan.gan.models import Maxout, MLPDiscriminator, build_gan
from tinygan.gan.pack import Packed, pack_samples
from tinygan.gan.penalties import gradient_penalty, r1_penalty
from tinygan.run import TrainConfig, train
from tinygan.run.config import ConfigError
from tinygan.run.trainer import Trainer, load_generator
from tinygan.testing import gradcheck, gradgradcheck


def t64(a, requires_grad=False):
    return tinygan.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def concat_packs(x: np.ndarray, m: int) -> np.ndarray:
    """The packs written out by hand: pack k = concat(x[kM], ..., x[kM + M - 1]) along axis 1."""
    return np.concatenate([x[j::m] for j in range(m)], axis=1)


# --------------------------------------------------------------------------- shapes and values

@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_packed_mlp_on_vectors_equals_the_inner_d_on_concatenated_features(m):
    tinygan.manual_seed(0)
    G, D = build_gan("mlp", data_dim=2, pack=m, hidden=(16, 16))
    assert isinstance(D, Packed) == (m > 1)
    inner = D.inner if m > 1 else D
    assert inner.in_shape == (2 * m,)                          # the inner D is built M times as wide
    x = np.random.default_rng(1).standard_normal((6 * m, 2)).astype(np.float32)
    out = D(tinygan.tensor(x))
    assert out.shape == (6,)                                    # one logit per pack
    expected = inner(tinygan.tensor(concat_packs(x, m))).numpy()
    np.testing.assert_array_equal(out.numpy(), expected)


def test_packed_dcgan_stacks_the_images_along_the_channels():
    tinygan.manual_seed(0)
    _, D = build_gan("dcgan", image_shape=(1, 16, 16), pack=2, ndf=4)
    assert D.inner.nc == 2                                      # M C input channels
    x = np.random.default_rng(2).uniform(-1, 1, (6, 1, 16, 16)).astype(np.float32)
    D.eval()                                                    # batch norm on running stats: deterministic
    out = D(tinygan.tensor(x)).numpy()
    assert out.shape == (3,)
    packs = concat_packs(x, 2)                                  # (3, 2, 16, 16): image 2k then image 2k+1
    assert packs.shape == (3, 2, 16, 16)
    np.testing.assert_array_equal(packs[1, 1], x[3, 0])
    np.testing.assert_array_equal(out, D.inner(tinygan.tensor(packs)).numpy())


def test_pack_samples_is_the_hand_written_concatenation_for_colour_images():
    x = np.arange(4 * 3 * 2 * 2, dtype=np.float32).reshape(4, 3, 2, 2)
    packed = pack_samples(tinygan.tensor(x), 2).numpy()
    np.testing.assert_array_equal(packed, concat_packs(x, 2))
    np.testing.assert_array_equal(packed[1, 3:], x[3])          # the second image of pack 1: channels 3..5


def test_the_field_of_a_packed_d_scores_m_copies_of_each_point():
    tinygan.manual_seed(0)
    _, D = build_gan("mlp", data_dim=2, pack=3, hidden=(8,))
    pts = np.random.default_rng(3).standard_normal((5, 2)).astype(np.float32)
    out = D.on_copies()(tinygan.tensor(pts)).numpy()
    assert out.shape == (5,)
    np.testing.assert_allclose(out, D.inner(tinygan.tensor(np.tile(pts, (1, 3)))).numpy(), rtol=1e-6)


def test_state_dict_keys_name_the_inner_network():
    _, D = build_gan("mlp", data_dim=2, pack=2, hidden=(8,))
    assert list(D.state_dict()) == ["inner.main.0.weight", "inner.main.0.bias", "inner.main.2.weight",
                                    "inner.main.2.bias"]
    assert D.state_dict()["inner.main.0.weight"].shape == (8, 4)


# --------------------------------------------------------------------------- gradients (float64)

def _double_packed(m: int, activation: str):
    tinygan.manual_seed(4)
    return Packed(MLPDiscriminator((2 * m,), (5, 4), activation=activation, maxout_pieces=3), m).double()


@pytest.mark.parametrize("activation", ["lrelu", "maxout"])
def test_gradcheck_through_the_wrapper(activation):
    D = _double_packed(3, activation)
    x = t64(np.random.default_rng(5).standard_normal((6, 2)), requires_grad=True)
    assert gradcheck(lambda x: D(x), [x])
    w = D.inner.main[0].weight                                  # and a weight of the inner network
    assert gradcheck(lambda w: D(x.detach()), [w])


def test_gradgradcheck_through_the_wrapper_the_gradient_penalty_path():
    D = _double_packed(2, "maxout")
    x = t64(np.random.default_rng(6).standard_normal((4, 2)), requires_grad=True)
    assert gradgradcheck(lambda x: D(x), [x])


def test_penalties_run_on_a_packed_critic_and_reach_its_weights():
    D = _double_packed(2, "lrelu")
    rng = np.random.default_rng(7)
    real, fake = t64(rng.standard_normal((8, 2))), t64(rng.standard_normal((8, 2)))
    for penalty in (gradient_penalty(D, real, fake, generator=rng), r1_penalty(D, real, 10.0)):
        assert penalty.shape == () and np.isfinite(penalty.item())
        D.zero_grad()
        penalty.backward()
        weights = [p for name, p in D.named_parameters() if name.endswith("weight")]   # (a bias of the last
        assert all(p.grad is not None and np.abs(p.grad.numpy()).sum() > 0 for p in weights)  # layer gets none)


def test_maxout_takes_the_max_of_consecutive_pieces():
    x = tinygan.tensor(np.array([[1.0, 5.0, 2.0, -1.0, -3.0, -2.0]], dtype=np.float32))
    np.testing.assert_array_equal(Maxout(3)(x).numpy(), [[5.0, -1.0]])
    big = np.random.default_rng(8).standard_normal((7, 40)).astype(np.float32)
    np.testing.assert_array_equal(Maxout(5)(tinygan.tensor(big)).numpy(), big.reshape(7, 8, 5).max(axis=2))
    tied = tinygan.tensor(np.array([[2.0, 2.0, 1.0, 0.0, 3.0, 3.0]], dtype=np.float32), requires_grad=True)
    (Maxout(3)(tied) * tinygan.tensor(np.array([[10.0, 20.0]], dtype=np.float32))).sum().backward()
    np.testing.assert_array_equal(tied.grad.numpy(), [[10.0, 0.0, 0.0, 0.0, 20.0, 0.0]])   # a tie: the first piece
    D = MLPDiscriminator((2,), (200, 200, 200), activation="maxout", maxout_pieces=5)   # the papers' toy D
    assert D.main[0].weight.shape == (1000, 2) and D.main[-1].weight.shape == (1, 200)


# --------------------------------------------------------------------------- training steps

@pytest.mark.parametrize("loss", ["nonsaturating", "lsgan", "wgan", "wgan-gp", "hinge"])
def test_a_training_step_runs_with_pack_for_the_mlp(loss):
    t = Trainer(TrainConfig(model="mlp", dataset="ring8", loss=loss, pack=2, batch_size=8, nz=4, steps=1,
                            progress=False))
    assert isinstance(t.D, Packed) and t.D.pack == 2
    record = t.train_step()
    assert all(np.isfinite(float(v)) for v in record.values())


def test_a_training_step_runs_with_pack_and_r1_for_dcgan():
    t = Trainer(TrainConfig(dry_run=True, pack=2, batch_size=4, ngf=4, ndf=4, nz=8, r1=1.0, progress=False))
    assert isinstance(t.D, Packed) and t.D.inner.nc == 2
    before = t.D.inner.main[0].weight.numpy().copy()
    record = t.train_step()
    assert np.isfinite(float(record["r1"])) and np.isfinite(float(record["Loss_D"]))
    assert not np.array_equal(before, t.D.inner.main[0].weight.numpy())     # D learned


def test_a_packed_run_saves_and_its_generator_loads(tmp_path):
    out = tmp_path / "run"
    train(TrainConfig(model="mlp", dataset="grid25", pack=4, batch_size=16, nz=4, steps=2, progress=False,
                      out=str(out)))
    assert '"pack": 4' in (out / "config.json").read_text()
    G, config, _ = load_generator(out / "checkpoint.npz")
    assert config.pack == 4 and G.nz == 4


# --------------------------------------------------------------------------- refusals

def test_the_batch_size_must_be_a_multiple_of_the_pack():
    with pytest.raises(ConfigError, match=r"--pack 3 and --batch-size 64"):
        TrainConfig(pack=3, batch_size=64).validate()
    TrainConfig(pack=4, batch_size=64).validate()


@pytest.mark.parametrize("model", ["cgan", "cgan-mlp", "infogan"])
def test_conditional_models_refuse_pack(model):
    with pytest.raises(ConfigError, match=rf"--pack: --model {model}"):
        TrainConfig(model=model, pack=2).validate()
    with pytest.raises(ValueError, match="unconditional"):
        build_gan(model, data_dim=2, pack=2)


def test_build_gan_and_the_wrapper_refuse_bad_packs():
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="pack size must be an integer"):
            build_gan("mlp", data_dim=2, pack=bad)
    _, D = build_gan("mlp", data_dim=2, pack=3, hidden=(4,))
    with pytest.raises(ValueError, match="a batch of 4 samples cannot be cut into packs of 3"):
        D(tinygan.tensor(np.zeros((4, 2), np.float32)))
    with pytest.raises(ValueError, match="unconditional"):
        D(tinygan.tensor(np.zeros((3, 2), np.float32)), labels=np.zeros(3, np.int64))


def test_the_cli_names_both_flags(capsys, tmp_path):
    code = main(["train", "--model", "mlp", "--dataset", "ring8", "--pack", "3", "--batch-size", "64",
                 "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "--pack 3 and --batch-size 64" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as e:
        main(["train", "--pack", "0"])
    assert e.value.code == 2 and "--pack" in capsys.readouterr().err
