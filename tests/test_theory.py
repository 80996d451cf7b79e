"""The GAN paper's theory, numerically: D*, V(D*, G) = -log 4 + 2 JSD, saturation; and the toy pictures."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tinygan import theory as T
from tinygan.run import TrainConfig
from tinygan.run.toy import train_with_snapshots
from tinygan.viz import toy as V

ROOT = Path(__file__).resolve().parent.parent

probability_vectors = arrays(np.float64, 12, elements=st.floats(0.0, 1.0)).filter(lambda w: w.sum() > 1e-3) \
    .map(T.normalise)
# The same, with every probability 0 or >= 1e-4, so that 1 - D* is representable in float64.
coarse_probability_vectors = probability_vectors.map(lambda p: T.normalise(np.where(p < 1e-3, 0.0, p)))


# ----------------------------------------------------------------------------- divergences

@given(probability_vectors, probability_vectors)
def test_jsd_properties(p, q):
    jsd = T.js_divergence(p, q)
    assert 0 <= jsd <= np.log(2) + 1e-12                        # bounded, unlike KL
    assert jsd == pytest.approx(T.js_divergence(q, p))          # symmetric
    assert T.js_divergence(p, p) == pytest.approx(0, abs=1e-12)


def test_jsd_of_disjoint_supports_is_log2_and_kl_is_infinite():
    p, q = np.array([0.5, 0.5, 0, 0]), np.array([0, 0, 0.25, 0.75])
    assert T.js_divergence(p, q) == pytest.approx(np.log(2))
    assert T.kl_divergence(p, q) == np.inf


def test_kl_of_gaussians_on_a_fine_grid_matches_the_closed_form():
    x = T.make_grid(-20, 20, 8001)
    p, q = T.gaussian_mixture_on_grid(x, [0.0], 1.0), T.gaussian_mixture_on_grid(x, [1.0], 2.0)
    closed = np.log(2 / 1) + (1 + 1) / (2 * 4) - 0.5      # log(s2/s1) + (s1^2 + (m1-m2)^2) / (2 s2^2) - 1/2
    assert T.kl_divergence(p, q) == pytest.approx(closed, rel=1e-6)


# ----------------------------------------------------------------------------- Proposition 1 and Theorem 1

@given(probability_vectors, probability_vectors)
def test_value_at_the_optimal_discriminator_is_minus_log4_plus_2jsd(p_data, p_g):
    jsd = T.js_divergence(p_data, p_g)                          # from the definition, not from V
    assert T.value_at_optimum(p_data, p_g) == pytest.approx(-T.LOG4 + 2 * jsd, abs=1e-12)


@given(coarse_probability_vectors, coarse_probability_vectors)
def test_value_function_at_d_star(p_data, p_g):
    d_star = T.optimal_discriminator(p_data, p_g)
    assert T.value_function(d_star, p_data, p_g) == pytest.approx(-T.LOG4 + 2 * T.js_divergence(p_data, p_g),
                                                                  abs=1e-12)


@given(coarse_probability_vectors, coarse_probability_vectors, arrays(np.float64, 12, elements=st.floats(-0.3, 0.3)))
def test_optimal_discriminator_maximises_v(p_data, p_g, delta):
    d_star = T.optimal_discriminator(p_data, p_g)
    other = np.clip(d_star + delta, 1e-6, 1 - 1e-6)
    assert T.value_function(other, p_data, p_g) <= T.value_function(d_star, p_data, p_g) + 1e-12


def test_value_is_minimal_when_p_g_equals_p_data():
    x = T.make_grid(-4, 12, 321)
    p_data = T.toy_on_grid("gauss1d", x)
    values = [T.value_at_optimum(p_data, T.gaussian_mixture_on_grid(x, [mu], 0.5)) for mu in np.linspace(2, 6, 41)]
    assert int(np.argmin(values)) == 20                          # mean 4: p_g = p_data
    assert min(values) == pytest.approx(-T.LOG4, abs=1e-6)


def _problem():
    x = T.make_grid(-6, 6, 121)
    return x, T.toy_on_grid("bimodal1d", x), T.gaussian_mixture_on_grid(x, [0.5], 1.2)


def test_trained_table_discriminator_reaches_d_star():
    x, p_data, p_g = _problem()
    d, history = T.train_discriminator(x, p_data, p_g, "table", steps=1500, lr=0.05)
    d_star = T.optimal_discriminator(p_data, p_g)
    mass = (p_data + p_g) > 1e-6
    assert np.abs(d - d_star)[mass].max() < 2e-3
    v = T.value_function(d, p_data, p_g)
    assert v == pytest.approx(-T.LOG4 + 2 * T.js_divergence(p_data, p_g), abs=1e-4)
    assert v <= T.value_at_optimum(p_data, p_g) + 1e-12           # nothing beats D*
    assert history[-1] > history[0]                              # gradient *ascent* on V


def test_trained_mlp_discriminator_approaches_d_star():
    x, p_data, p_g = _problem()
    d, history = T.train_discriminator(x, p_data, p_g, "mlp", steps=600, lr=0.02, hidden=16)
    d_star = T.optimal_discriminator(p_data, p_g)
    m = (p_data + p_g) / 2
    assert (m * np.abs(d - d_star)).sum() < 0.02                 # close where there is mass
    assert history[-1] == pytest.approx(T.value_at_optimum(p_data, p_g), abs=5e-3)


# ----------------------------------------------------------------------------- saturation

def test_minimax_generator_gradient_vanishes_and_nonsaturating_does_not():
    d = np.array([0.5, 1e-2, 1e-4, 1e-6, 1e-8])
    g = T.generator_gradients(d)
    assert np.allclose(g["dl_minimax"], -d, rtol=1e-6)          # dlog(1 - D)/dl = -D
    assert np.allclose(g["dl_nonsaturating"], -(1 - d), rtol=1e-6)
    assert abs(g["dl_minimax"][-1]) < 1e-7 and abs(g["dl_nonsaturating"][-1]) > 0.99
    # the seed's picture, d/dD: log(1 - D) has slope -1 at D = 0, -log D has slope -1/D -> -inf
    assert g["dD_minimax"][-1] == pytest.approx(-1) and g["dD_nonsaturating"][-1] == pytest.approx(-1e8)


def test_saturation_reaches_a_generator_parameter():
    z = np.random.default_rng(0).normal(0, 0.3, 128)
    rows = [(T.shift_generator_gradient("minimax", th, z), T.shift_generator_gradient("nonsaturating", th, z))
            for th in (0.0, -1.0, -2.0, -4.0)]
    d = [r[0][0] for r in rows]
    minimax = [abs(r[0][1]) for r in rows]
    nonsat = [abs(r[1][1]) for r in rows]
    assert d == sorted(d, reverse=True) and d[-1] < 1e-6          # D(G(z)) -> 0 as theta moves left
    assert minimax == sorted(minimax, reverse=True) and minimax[-1] < 1e-5
    assert nonsat[-1] == pytest.approx(4.0, rel=1e-3)            # -> slope of D's logit


def test_saturation_plot(tmp_path, monkeypatch):
    g = T.generator_gradients(np.logspace(-6, -0.1, 50))
    path = V.save_saturation_plot(g, tmp_path / "sat.png")
    assert path.is_file() and path.stat().st_size > 1000
    monkeypatch.setattr(V, "_pyplot", lambda: None)               # the Pillow fallback
    assert V.save_saturation_plot(g, tmp_path / "sat_pil.png").is_file()


# ----------------------------------------------------------------------------- toy pictures

def test_kde_integrates_to_one_and_survives_collapse():
    x = np.linspace(-5, 5, 1001)
    s = np.random.default_rng(0).normal(0, 1, 500)
    assert np.trapezoid(V.gaussian_kde_1d(s, x), x) == pytest.approx(1, abs=1e-3)
    spike = V.gaussian_kde_1d(np.zeros(100), x)
    assert np.isfinite(spike).all() and spike.max() > 10


@pytest.mark.parametrize("matplotlib", [True, False])
def test_figure1_and_field_pictures(tmp_path, monkeypatch, matplotlib):
    if matplotlib:     # in the test extra: without it this case would silently draw with Pillow again
        assert V._pyplot() is not None, "matplotlib does not import; pip install -e '.[test]'"
    else:
        monkeypatch.setattr(V, "_pyplot", lambda: None)
    from tinygan.data import sample_toy, toy_density
    rng = np.random.default_rng(0)
    x = np.linspace(-4, 4, 200)
    p1 = V.save_figure1(x, toy_density("bimodal1d", x), rng.normal(0, 1, 300), 1 / (1 + np.exp(-x)),
                        tmp_path / "f1.png", title="t", real=sample_toy("bimodal1d", 300, rng))
    p2 = V.save_figure1(x, toy_density("bimodal1d", x), rng.normal(0, 1, 300), 3 * x, tmp_path / "f1w.png",
                        probabilistic=False)
    pts, ticks = V.field_grid(1.5, 40)
    field = np.exp(-((pts ** 2).sum(1))).reshape(40, 40)
    p3 = V.save_field_2d(sample_toy("ring8", 200, rng), rng.normal(0, 0.5, (200, 2)), field, 1.5,
                         tmp_path / "f2.png", title="ring")
    for p in (p1, p2, p3):
        assert p.is_file() and p.stat().st_size > 1000


@pytest.mark.parametrize("dataset,loss", [("gauss1d", "nonsaturating"), ("ring8", "wgan-gp")])
def test_train_with_snapshots(tmp_path, dataset, loss):
    config = TrainConfig(model="mlp", dataset=dataset, loss=loss, batch_size=16, nz=4, progress=False,
                         out=str(tmp_path))
    res = train_with_snapshots(config, [0, 2], tmp_path / "snap", n=100)
    assert [p.name for p in res["frames"]] == ["step_000000.png", "step_000002.png"]
    assert res["gif"].is_file() and res["panel"].is_file() and res["trainer"].step == 2


# ----------------------------------------------------------------------------- the examples

@pytest.mark.slow
def test_mode_collapse_example_quick(tmp_path):
    out = tmp_path / "mc"
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "mode_collapse.py"), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert "| GAN " in proc.stdout and "| PacGAN2 " in proc.stdout and "modes captured" in proc.stdout
    assert (out / "results.json").is_file() and (out / "samples.png").is_file()


@pytest.mark.slow
def test_theory_lab_example(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "theory_lab.py"), "--out", str(tmp_path),
                           "--steps-1d", "0", "5", "--steps-2d", "0", "5"], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr
    for name in ("optimal_discriminator.png", "value_vs_jsd.png", "saturation.png"):
        assert (tmp_path / name).is_file()
    assert (tmp_path / "gauss1d" / "snapshots.gif").is_file()


# ----------------------------------------------------------------------------- docs/theory.md

def test_theory_doc_shows_its_figures():
    text = (ROOT / "docs" / "theory.md").read_text()
    for name in ("optimal_discriminator.png", "value_vs_jsd.png", "saturation.png", "figure1_gauss1d.png",
                 "ring8_field.png", "mode_collapse_grid25.png"):
        figure = ROOT / "docs" / "figures" / name
        assert f"figures/{name}" in text
        assert figure.is_file(), f"docs/theory.md shows figures/{name}, which is not in docs/figures/"
        assert figure.stat().st_size < 200_000, f"{name} is over 200 KB"
