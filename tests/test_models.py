"""The GAN family's models: shapes, the trainer's contract, conditioning, InfoGAN's Q and L_I, state dicts."""
from __future__ import annotations

import numpy as np
import pytest

import tinygan as tg
from tinygan import functional as F
from tinygan import nn
from tinygan.gan import (MODELS, ConditionalDCGANDiscriminator, ConditionalDCGANGenerator,
                         ConditionalMLPDiscriminator, ConditionalMLPGenerator, DCGANDiscriminator, DCGANGenerator,
                         InfoGANDiscriminator, InfoGANGenerator, MLPGenerator, build_gan, info_loss,
                         sample_grid_inputs)
from tinygan.gan.sampling import generate

SMALL = dict(nz=6, ngf=4, ndf=4, num_classes=3, num_categories=4, num_continuous=2, hidden=(16,))
EXPECTED_KEYS = {"mlp": {"z"}, "dcgan": {"z"}, "cgan": {"z", "labels"}, "cgan-mlp": {"z", "labels"},
                 "infogan": {"z", "c_cat", "c_cont"}, "acgan": {"z", "labels"}, "acgan-mlp": {"z", "labels"}}


def _tensors(inputs: dict) -> dict:
    return {k: tg.tensor(v) for k, v in inputs.items()}


def _run(G, D, n=3, seed=0):
    """Draw G's inputs, generate, discriminate (with labels for conditional models)."""
    inputs = G.sample_inputs(n, np.random.default_rng(seed))
    x = G(**_tensors(inputs))
    logits = D(x, labels=inputs["labels"]) if getattr(D, "conditional", False) else D(x)   # not ACGAN's D
    return inputs, x, logits


# ------------------------------------------------------------------------------------ shapes and contract

IMAGE_CASES = [(m, s) for m in ("dcgan", "cgan", "infogan") for s in (28, 32, 64)] + \
              [(m, s) for m in ("mlp", "cgan-mlp") for s in (28, 32)]        # fully connected: small images


@pytest.mark.parametrize("model, size", IMAGE_CASES)
def test_image_models_shapes(model, size):
    G, D = build_gan(model, image_shape=(2, size, size), **SMALL)
    inputs, x, logits = _run(G, D)
    assert x.shape == (3, 2, size, size)
    assert np.all(np.abs(x.numpy()) <= 1)                                   # tanh output
    assert logits.shape == (3,)
    assert set(inputs) == EXPECTED_KEYS[model]


@pytest.mark.parametrize("model", ["mlp", "cgan", "cgan-mlp", "infogan"])
@pytest.mark.parametrize("dim", [1, 2])
def test_vector_models_shapes(model, dim):
    G, D = build_gan(model, data_dim=dim, **SMALL)
    inputs, x, logits = _run(G, D, n=5)
    assert x.shape == (5, dim) and logits.shape == (5,)
    assert set(inputs) == EXPECTED_KEYS[model]
    assert G.output == "linear"                                             # toy points are not squashed


@pytest.mark.parametrize("model", MODELS)
def test_sample_inputs_dtypes_ranges_and_determinism(model):
    G, _ = build_gan(model, image_shape=(1, 28, 28), **SMALL)
    inputs = G.sample_inputs(500, np.random.default_rng(1))
    again = G.sample_inputs(500, np.random.default_rng(1))
    assert inputs["z"].dtype == np.float32 and inputs["z"].shape == (500, 6)
    assert abs(inputs["z"].mean()) < 0.1 and abs(inputs["z"].std() - 1) < 0.1      # N(0, I)
    if "labels" in inputs:
        assert inputs["labels"].dtype == np.int64 and inputs["labels"].shape == (500,)
        assert set(inputs["labels"]) == {0, 1, 2}
    if "c_cat" in inputs:
        assert inputs["c_cat"].dtype == np.int64 and set(inputs["c_cat"]) == {0, 1, 2, 3}
        c = inputs["c_cont"]
        assert c.dtype == np.float32 and c.shape == (500, 2) and c.min() >= -1 and c.max() <= 1
    for k in inputs:
        np.testing.assert_array_equal(inputs[k], again[k])


def test_dcgan_generator_sample_inputs():
    G = DCGANGenerator(nz=5, ngf=4, nc=1, image_size=8)
    inputs = G.sample_inputs(4, np.random.default_rng(0))
    assert list(inputs) == ["z"] and inputs["z"].shape == (4, 5) and inputs["z"].dtype == np.float32
    assert G(**_tensors(inputs)).shape == (4, 1, 8, 8)


def test_build_gan_takes_the_critic_normalisation_from_the_loss():
    def kinds(m):
        return {type(x).__name__ for x in m.modules()}
    _, D = build_gan("dcgan", image_shape=(1, 28, 28), **SMALL)
    assert "BatchNorm2d" in kinds(D) and "LayerNorm" not in kinds(D)
    for model in ("dcgan", "cgan", "infogan"):
        _, D = build_gan(model, image_shape=(1, 28, 28), loss="wgan-gp", **SMALL)
        assert "LayerNorm" in kinds(D) and not kinds(D) & {"BatchNorm2d", "BatchNorm1d"}, model
    _, D = build_gan("mlp", data_dim=2, loss="wgan-gp", **{**SMALL, "hidden": (16, 16)})
    assert "LayerNorm" in kinds(D) and "BatchNorm1d" not in kinds(D)         # on hidden layers after the first
    _, D = build_gan("mlp", data_dim=2, loss=tg.gan.get_loss("nonsaturating"), **SMALL)
    assert not kinds(D) & {"LayerNorm", "BatchNorm1d"}                     # the GAN paper's MLP: no norm


def test_build_gan_picks_the_architecture():
    G, D = build_gan("cgan", image_shape=(1, 28, 28), **SMALL)
    assert isinstance(G, ConditionalDCGANGenerator) and isinstance(D, ConditionalDCGANDiscriminator)
    G, D = build_gan("cgan-mlp", image_shape=(1, 28, 28), **SMALL)
    assert isinstance(G, ConditionalMLPGenerator) and isinstance(D, ConditionalMLPDiscriminator)
    G, D = build_gan("cgan", data_dim=2, **SMALL)
    assert isinstance(G, ConditionalMLPGenerator)
    G, D = build_gan("infogan", image_shape=(1, 28, 28), **SMALL)
    assert isinstance(G, InfoGANGenerator) and isinstance(D, InfoGANDiscriminator)
    G, D = build_gan("dcgan", image_shape=(3, 32, 32), **SMALL)
    assert type(G) is DCGANGenerator and type(D) is DCGANDiscriminator


def test_build_gan_errors_are_clear():
    with pytest.raises(ValueError, match="unknown model 'vae'"):
        build_gan("vae", image_shape=(1, 28, 28))
    with pytest.raises(ValueError, match="needs images"):
        build_gan("dcgan", data_dim=2)
    with pytest.raises(ValueError, match="exactly one of"):
        build_gan("mlp", image_shape=(1, 28, 28), data_dim=2)
    with pytest.raises(ValueError, match="num_classes >= 2"):
        build_gan("cgan", data_dim=2, num_classes=0)
    with pytest.raises(ValueError, match="square"):
        build_gan("dcgan", image_shape=(1, 28, 32))
    with pytest.raises(ValueError, match="image_size=30"):
        build_gan("cgan", image_shape=(1, 30, 30))


# ------------------------------------------------------------------------------------ conditioning

@pytest.mark.parametrize("model", ["cgan", "cgan-mlp"])
def test_cgan_labels_change_the_output(model):
    G, D = build_gan(model, image_shape=(1, 28, 28), **SMALL)
    G.eval(), D.eval()                                           # no batch statistics: rows are independent
    z = tg.tensor(np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32))
    x0 = G(z, labels=np.array([0, 0, 0])).numpy()
    x1 = G(z, labels=np.array([0, 1, 2])).numpy()
    np.testing.assert_array_equal(x0[0], x1[0])                 # same z, same label: same image
    assert np.abs(x0[1:] - x1[1:]).max() > 1e-6                   # another label: another image
    img = tg.tensor(x1)
    d0 = D(img, labels=np.array([0, 0, 0])).numpy()
    d1 = D(img, labels=np.array([0, 1, 2])).numpy()
    assert d0[0] == d1[0] and np.all(d0[1:] != d1[1:])
    # labels as an int Tensor (what sampling.generate and the trainer pass) equal labels as an array
    np.testing.assert_array_equal(G(z, labels=tg.tensor(np.array([0, 1, 2]))).numpy(), x1)


def test_conditional_dcgan_is_dcgan_on_concatenated_inputs():
    # G(z, y) = DCGAN-G(concat(z, one_hot(y))); D(x, y) = DCGAN-D(concat(x, K constant label maps)).
    k, nz = 3, 6
    G = ConditionalDCGANGenerator(nz, k, ngf=4, nc=1, image_size=16).eval()
    D = ConditionalDCGANDiscriminator(1, k, ndf=4, image_size=16).eval()
    plainG = DCGANGenerator(nz, ngf=4, nc=1, image_size=16, in_features=nz + k).eval()
    plainD = DCGANDiscriminator(1, ndf=4, image_size=16, in_channels=1 + k).eval()
    plainG.load_state_dict(G.state_dict())
    plainD.load_state_dict(D.state_dict())
    rng = np.random.default_rng(2)
    z = rng.standard_normal((4, nz)).astype(np.float32)
    y = np.array([2, 0, 1, 2])
    onehot = np.eye(k, dtype=np.float32)[y]
    np.testing.assert_allclose(G(tg.tensor(z), labels=y).numpy(),
                               plainG(tg.tensor(np.concatenate([z, onehot], 1))).numpy(), rtol=1e-6)
    x = rng.uniform(-1, 1, (4, 1, 16, 16)).astype(np.float32)
    maps = np.broadcast_to(onehot[:, :, None, None], (4, k, 16, 16))
    np.testing.assert_allclose(D(tg.tensor(x), labels=y).numpy(),
                               plainD(tg.tensor(np.concatenate([x, maps], 1))).numpy(), rtol=1e-5)


def test_conditional_mlp_with_a_label_embedding():
    G = ConditionalMLPGenerator(nz=4, num_classes=5, out_shape=(2,), hidden=(8,), label_embedding=3)
    D = ConditionalMLPDiscriminator(in_shape=(2,), num_classes=5, hidden=(8,), label_embedding=3)
    assert G.main[0].in_features == 4 + 3 and D.main[0].in_features == 2 + 3
    assert "embed.weight" in G.state_dict() and G.state_dict()["embed.weight"].shape == (5, 3)
    inputs, x, logits = _run(G, D, n=6)
    assert x.shape == (6, 2) and logits.shape == (6,)
    loss = logits.sum()
    loss.backward()
    assert D.embed.weight.grad is not None                      # the embedding is learned


def test_bad_labels_are_reported():
    G, D = build_gan("cgan", image_shape=(1, 28, 28), **SMALL)
    z = tg.randn(2, 6)
    with pytest.raises(ValueError, match=r"pass labels"):
        G(z)
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        G(z, labels=np.array([0, 3]))
    with pytest.raises(ValueError, match="integers of shape"):
        G(z, labels=np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="expected images"):
        D(tg.randn(2, 1, 32, 32), labels=np.array([0, 1]))
    Gu, Du = build_gan("mlp", data_dim=2, **SMALL)
    with pytest.raises(ValueError, match="unconditional"):
        Du(tg.randn(2, 2), labels=np.array([0, 1]))


# ------------------------------------------------------------------------------------ InfoGAN

def test_infogan_generator_is_dcgan_on_codes():
    G = InfoGANGenerator(nz=5, num_categories=4, num_continuous=2, ngf=4, nc=1, image_size=16).eval()
    plain = DCGANGenerator(nz=5, ngf=4, nc=1, image_size=16, in_features=5 + 4 + 2).eval()
    plain.load_state_dict(G.state_dict())
    inputs = G.sample_inputs(3, np.random.default_rng(0))
    latent = np.concatenate([inputs["z"], np.eye(4, dtype=np.float32)[inputs["c_cat"]], inputs["c_cont"]], 1)
    np.testing.assert_allclose(G(**_tensors(inputs)).numpy(), plain(tg.tensor(latent)).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="not labels"):
        G(tg.tensor(inputs["z"]), labels=np.zeros(3, np.int64), c_cat=inputs["c_cat"], c_cont=inputs["c_cont"])


@pytest.mark.parametrize("shape", [(1, 28, 28), (2,)])
def test_infogan_return_q_shapes_and_q_parameters(shape):
    kw = dict(image_shape=shape) if len(shape) == 3 else dict(data_dim=shape[0])
    G, D = build_gan("infogan", **kw, **SMALL)
    inputs, x, logits = _run(G, D, n=5)
    logits2, q = D(x, return_q=True)
    np.testing.assert_allclose(logits2.numpy(), logits.numpy(), rtol=1e-6)
    assert set(q) == {"cat_logits", "cont_mean"}
    assert q["cat_logits"].shape == (5, 4) and q["cont_mean"].shape == (5, 2)
    # Q's own parameters belong to D's module tree but are not D's body or logit layer.
    q_ids = {id(p) for p in D.q_parameters()}
    d_ids = {id(p) for p in D.parameters()}
    main_ids = {id(p) for p in D.main.parameters()}
    assert q_ids and q_ids <= d_ids and not q_ids & main_ids
    assert all(k.startswith("q.") for k, p in D.named_parameters() if id(p) in q_ids)


def test_info_loss_matches_a_hand_computation():
    rng = np.random.default_rng(3)
    cat_logits = rng.normal(size=(6, 4))
    cont_mean = rng.normal(size=(6, 2))
    c_cat = np.array([0, 3, 1, 1, 2, 0])
    c_cont = rng.uniform(-1, 1, (6, 2))
    # -log softmax(s)[c], averaged; and the Gaussian NLL with unit variance, sum over codes, averaged
    log_softmax = cat_logits - np.log(np.exp(cat_logits).sum(1, keepdims=True))
    ce = -np.mean(log_softmax[np.arange(6), c_cat])
    gauss = np.mean(np.sum(0.5 * (cont_mean - c_cont) ** 2, axis=1))
    q = {"cat_logits": tg.tensor(cat_logits), "cont_mean": tg.tensor(cont_mean)}
    for lam_cat, lam_cont in ((1.0, 0.1), (0.5, 2.0)):
        got = info_loss(q, {"c_cat": c_cat, "c_cont": c_cont}, lambda_cat=lam_cat, lambda_cont=lam_cont)
        np.testing.assert_allclose(got.item(), lam_cat * ce + lam_cont * gauss, rtol=1e-12)
    as_tensors = info_loss(q, {"c_cat": tg.tensor(c_cat), "c_cont": tg.tensor(c_cont)})
    np.testing.assert_allclose(as_tensors.item(), ce + 0.1 * gauss, rtol=1e-12)
    np.testing.assert_allclose(info_loss({"cat_logits": q["cat_logits"]}, {"c_cat": c_cat}).item(), ce, rtol=1e-12)
    with pytest.raises(ValueError, match="no code"):
        info_loss({}, {"c_cat": c_cat})


def test_info_loss_trains_q_and_g_not_ds_body():
    # The trainer's G step: D's body and logit layer frozen, Q's head trained with G on L_I.
    tg.manual_seed(0)
    G, D = build_gan("infogan", image_shape=(1, 16, 16), **SMALL)
    q_ids = {id(p) for p in D.q_parameters()}
    body = [p for p in D.parameters() if id(p) not in q_ids]
    for p in body:
        p.requires_grad = False
    inputs = G.sample_inputs(4, np.random.default_rng(0))
    t_inputs = _tensors(inputs)
    _, q = D(G(**t_inputs), return_q=True)
    info_loss(q, t_inputs).backward()
    assert all(p.grad is not None for p in D.q_parameters())
    assert all(p.grad is not None for p in G.parameters())
    assert all(p.grad is None for p in body)


# ------------------------------------------------------------------------------------ grids, sampling

def test_sample_grid_inputs_for_cgan_and_infogan():
    G, _ = build_gan("cgan", image_shape=(1, 28, 28), **SMALL)
    grid = sample_grid_inputs(G, rows=3, cols=4, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(grid["labels"], np.repeat([0, 1, 2], 4))           # one row per class
    assert grid["z"].shape == (12, 6)

    G, _ = build_gan("infogan", image_shape=(1, 28, 28), **SMALL)
    grid = sample_grid_inputs(G, rows=4, cols=5, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(grid["c_cat"], np.repeat([0, 1, 2, 3], 5))       # one row per category
    z = grid["z"].reshape(4, 5, 6)
    assert np.all(z == z[:, :1]) and not np.all(z[0] == z[1])                       # z fixed along a row
    c = grid["c_cont"].reshape(4, 5, 2)
    np.testing.assert_allclose(c[:, :, 0], np.tile(np.linspace(-1, 1, 5), (4, 1)))  # code 0: -1 -> 1
    assert np.all(c[:, :, 1] == 0)
    c1 = sample_grid_inputs(G, 2, 3, np.random.default_rng(0), code=1)["c_cont"]
    np.testing.assert_allclose(c1[:3, 1], [-1, 0, 1])
    np.testing.assert_array_equal(c1[:, 0], 0)         # (was after `and`: assert_allclose returns None, never ran)
    assert G(**_tensors(grid)).shape == (20, 1, 28, 28)

    G, _ = build_gan("mlp", data_dim=2, **SMALL)
    assert sample_grid_inputs(G, 2, 3, np.random.default_rng(0))["z"].shape == (6, 6)


@pytest.mark.parametrize("model", MODELS)
def test_sampling_generate_drives_every_model(model):
    # sampling.generate turns every input (integer labels/codes too) into a Tensor: G must accept that.
    G, _ = build_gan(model, image_shape=(1, 28, 28), **SMALL)
    inputs = sample_grid_inputs(G, 2, 3, np.random.default_rng(0))
    out = generate(G, inputs, batch_size=4)
    assert out.shape == (6, 1, 28, 28) and out.dtype == np.float32


# ------------------------------------------------------------------------------------ state dicts

@pytest.mark.parametrize("model", MODELS)
def test_state_dict_round_trip(model):
    tg.manual_seed(1)
    G1, D1 = build_gan(model, image_shape=(1, 16, 16), **SMALL)
    tg.manual_seed(2)
    G2, D2 = build_gan(model, image_shape=(1, 16, 16), **SMALL)
    _run(G1, D1, n=4)                                             # non-trivial running statistics
    for a, b in ((G1, G2), (D1, D2)):
        assert any(not np.array_equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
        b.load_state_dict(a.state_dict())
        assert a.state_dict().keys() == b.state_dict().keys()
        for k, v in a.state_dict().items():
            np.testing.assert_array_equal(v, b.state_dict()[k], err_msg=k)
    for m in (G1, D1, G2, D2):
        m.eval()
    inputs = G1.sample_inputs(3, np.random.default_rng(5))
    x1, x2 = G1(**_tensors(inputs)), G2(**_tensors(inputs))
    np.testing.assert_array_equal(x1.numpy(), x2.numpy())
    extra = {"labels": inputs["labels"]} if getattr(D1, "conditional", False) else {}
    np.testing.assert_array_equal(D1(x1, **extra).numpy(), D2(x1, **extra).numpy())


def test_unconditional_dcgan_keys_stay_pytorch_compatible():
    G, D = build_gan("dcgan", image_shape=(3, 64, 64), nz=100, ngf=8, ndf=8)
    assert list(G.state_dict())[:2] == ["main.0.weight", "main.1.weight"]
    assert "main.11.weight" in D.state_dict() and not any(k.startswith("q.") for k in D.state_dict())


def test_mlp_generator_accepts_4d_z_and_checks_shapes():
    G = MLPGenerator(nz=4, out_shape=(1, 8, 8), hidden=(8,))
    assert G(tg.randn(2, 4, 1, 1)).shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match=r"expected z of shape \(N, 4\)"):
        G(tg.randn(2, 5))
    with pytest.raises(ValueError, match="output must be"):
        MLPGenerator(output="sigmoid")


def test_conditional_maps_get_no_gradient_and_images_do():
    # The label maps are constants: grad_x of a conditional critic has the image's shape only
    # (what the gradient penalty takes the norm of).
    D = ConditionalDCGANDiscriminator(nc=1, num_classes=3, ndf=4, image_size=16, norm="none")
    x = tg.tensor(np.random.default_rng(0).normal(size=(2, 1, 16, 16)).astype(np.float32), requires_grad=True)
    (g,) = tg.grad(D(x, labels=np.array([0, 2])).sum(), x)
    assert g.shape == (2, 1, 16, 16)
    assert any(isinstance(m, nn.Conv2d) and m.in_channels == 4 for m in D.modules())
    assert F.one_hot(np.array([1]), 3).numpy().tolist() == [[0, 1, 0]]


# ------------------------------------------------------------------------------------ devices

@pytest.mark.parametrize("model", MODELS)
def test_models_losses_and_penalties_run_on_the_device(model, device):
    # What the trainer does with a model, on each available device ("cuda" only where CuPy sees a GPU):
    # host inputs moved to the device, G, D (with labels), the GP, the G loss (+ L_I), backward.
    from tinygan.backend import to_device
    from tinygan.gan import get_loss, gradient_penalty
    tg.manual_seed(0)
    G, D = build_gan(model, image_shape=(1, 16, 16), loss="wgan-gp", **SMALL)
    G.to(device), D.to(device)
    inputs = {k: tg.Tensor(to_device(v, device)) for k, v in G.sample_inputs(4, np.random.default_rng(0)).items()}
    fake = G(**inputs)
    assert fake.device == device
    labels = inputs.get("labels")
    critic = (lambda x: D(x, labels=labels)) if getattr(D, "conditional", False) else D
    real = tg.Tensor(to_device(np.random.default_rng(1).uniform(-1, 1, (4, 1, 16, 16)).astype(np.float32), device))
    loss = get_loss("wgan-gp")
    err_d = loss.d_loss(critic(real), critic(fake.detach())) + gradient_penalty(
        critic, real, fake.detach(), generator=np.random.default_rng(2))
    err_d.backward()
    assert np.isfinite(err_d.item())
    if hasattr(D, "q_parameters"):
        logits, q = D(fake, return_q=True)
        err_g = loss.g_loss(logits) + info_loss(q, inputs)
    else:
        err_g = loss.g_loss(critic(fake))
    G.zero_grad()
    err_g.backward()
    assert all(p.grad is not None and p.grad.device == device for p in G.parameters())
