"""Metrics: mixture mode counts, the Frechet distance and its matrix square root, IS, class and code
scores, k-NN precision/recall (with its orientation), the digit classifier, and ``tinygan eval``."""
from __future__ import annotations

import itertools
import json
import warnings

import numpy as np
import pytest

from tinygan.data import TOY_DATASETS

import tinygan as tg
from tinygan.data import load_bundled_mnist, sample_toy, toy_modes
from tinygan.metrics import (SampleSizeWarning, class_coverage, class_histogram, classify, code_agreement,
                             conditional_accuracy, frechet_distance, frechet_distance_from_stats, inception_score,
                             linear_assignment, mixture_metrics, precision_recall, reverse_kl_to_uniform, sqrtm_psd,
                             to_classifier_input, trace_sqrt_product)
from tinygan.metrics import classifier as C


# ----------------------------------------------------------------------------- toy mixtures

@pytest.mark.parametrize("name", ["grid25", "ring8"])
def test_mixture_metrics_of_real_samples_find_every_mode(name):
    x = sample_toy(name, 2500, np.random.default_rng(0))
    m = mixture_metrics(x, name)
    k = len(toy_modes(name)[0])
    assert m["modes_captured"] == m["num_modes"] == k
    # 2-D Gaussian: P(||x - mu|| < 3 sigma) = 1 - exp(-9/2) = 0.9889
    assert abs(m["high_quality"] - (1 - np.exp(-4.5))) < 0.01
    assert m["reverse_kl"] < 0.02 and m["n"] == 2500 and sum(m["mode_counts"]) <= 2500


def test_mixture_metrics_of_a_collapsed_generator_find_one_mode():
    centres, std = toy_modes("grid25")
    x = centres[7] + std * np.random.default_rng(1).standard_normal((2500, 2))     # all on mode 7
    m = mixture_metrics(x, "grid25")
    assert m["modes_captured"] == 1 and m["mode_counts"][7] == sum(m["mode_counts"])
    assert m["high_quality"] > 0.97
    assert m["reverse_kl"] == pytest.approx(np.log(25))                            # KL(one bin || uniform) = log K


def test_mixture_metrics_rules_far_samples_nan_and_min_count():
    centres, std = toy_modes("ring8")
    far = np.full((2500, 2), 10.0)                                                  # nowhere near a mode
    m = mixture_metrics(far, "ring8")
    assert m["modes_captured"] == 0 and m["high_quality"] == 0 and m["reverse_kl"] == pytest.approx(np.log(8))
    x = np.concatenate([np.repeat(centres[:1], 2480, axis=0), np.repeat(centres[1:2], 19, axis=0),
                        np.full((1, 2), np.nan)])
    assert mixture_metrics(x, "ring8")["modes_captured"] == 2                     # PacGAN's rule: >= 1 sample
    assert mixture_metrics(x, "ring8", min_count=20)["modes_captured"] == 1
    assert mixture_metrics(x, "ring8")["high_quality"] == pytest.approx(2499 / 2500)
    # exactly 3 std away is not "within"; just inside is
    edge = centres[:1] + np.array([[3.0 * std, 0.0], [2.999 * std, 0.0]])
    assert mixture_metrics(np.repeat(edge, 100, axis=0), "ring8", n=None)["high_quality"] == 0.5


def test_mixture_metrics_accepts_centres_and_1d_and_warns_on_few_samples():
    m = mixture_metrics(np.array([0.0, 0.1, 5.0, 5.2] * 50), (np.array([0.0, 5.0]), 0.1))
    assert m["modes_captured"] == 2 and m["high_quality"] == 1.0 and m["reverse_kl"] == pytest.approx(0)
    with pytest.warns(SampleSizeWarning, match="25 modes"):
        mixture_metrics(sample_toy("grid25", 100, np.random.default_rng(0)), "grid25")
    with pytest.raises(ValueError, match="2-D target"):
        mixture_metrics(np.zeros((10, 3)), "grid25")


def test_reverse_kl_to_uniform():
    assert reverse_kl_to_uniform([5, 5, 5, 5]) == pytest.approx(0)
    assert reverse_kl_to_uniform([0, 9, 0, 0]) == pytest.approx(np.log(4))
    q = np.array([1, 2, 3, 4]) / 10
    assert reverse_kl_to_uniform([1, 2, 3, 4]) == pytest.approx(np.sum(q * np.log(q * 4)))


# ----------------------------------------------------------------------------- Frechet distance

def test_sqrtm_and_trace_term_match_scipy():
    import scipy.linalg as scipy_linalg     # in the test extra: a reference, never skipped
    rng = np.random.default_rng(0)
    a = np.cov(rng.standard_normal((40, 12)), rowvar=False)
    b = np.cov(rng.standard_normal((30, 12)) * 3 + 1, rowvar=False)
    r = sqrtm_psd(a)
    assert np.allclose(r @ r, a, atol=1e-10) and np.allclose(r, r.T)
    assert np.allclose(r, scipy_linalg.sqrtm(a).real, atol=1e-9)
    assert trace_sqrt_product(a, b) == pytest.approx(np.trace(scipy_linalg.sqrtm(a @ b)).real, rel=1e-9)
    singular = np.cov(rng.standard_normal((5, 12)), rowvar=False)                 # rank 4
    assert np.isfinite(trace_sqrt_product(singular, b))


def test_frechet_distance_closed_forms():
    # 1-D Gaussians: W2^2 = (m1 - m2)^2 + (s1 - s2)^2
    assert frechet_distance_from_stats([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4 + 1)
    # commuting (diagonal) covariances: sum of the per-axis values
    s1, s2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 4.0, 1.0])
    assert frechet_distance_from_stats(np.zeros(3), s1, np.ones(3), s2) == pytest.approx(3 + 1 + 0 + 4)
    assert frechet_distance_from_stats(np.ones(3), s1, np.ones(3), s1) == pytest.approx(0, abs=1e-12)


def test_frechet_distance_of_samples_and_its_warnings():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3000, 4)), rng.standard_normal((3000, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = frechet_distance(a, b)
    assert same < 0.02
    assert frechet_distance(a, b + 2) == pytest.approx(16, rel=0.02)             # ||mu||^2 = 4 * 2^2
    with pytest.warns(SampleSizeWarning, match="fewer than 1000"):
        frechet_distance(a[:200], b[:200])
    with pytest.raises(ValueError, match="same d"):
        frechet_distance(a, b[:, :3])


# ----------------------------------------------------------------------------- class-based scores

def test_inception_score_extremes():
    k, n = 10, 2000
    confident_even = np.eye(k)[np.arange(n) % k]                                  # each class, sure
    assert inception_score(confident_even)[0] == pytest.approx(k, rel=1e-6)
    one_class = np.eye(k)[np.zeros(n, dtype=int)]                                  # collapsed
    assert inception_score(one_class)[0] == pytest.approx(1.0)
    unsure = np.full((n, k), 1 / k)                                                # no confidence
    assert inception_score(unsure)[0] == pytest.approx(1.0)
    with pytest.warns(SampleSizeWarning):
        inception_score(confident_even[:100])


def test_class_histogram_coverage_and_conditional_accuracy():
    labels = np.array([0] * 500 + [1] * 480 + [2] * 20)
    counts = class_histogram(labels, num_classes=4)
    assert counts.tolist() == [500, 480, 20, 0]
    cov = class_coverage(counts)                              # present: >= 10% of 1000 / 4 = 25
    assert cov["classes_present"] == 2 and cov["missing_classes"] == [2, 3]
    probs = np.eye(4)[labels]
    assert (class_histogram(probs, 4) == counts).all()
    requested = labels.copy()
    requested[:100] = 3
    assert conditional_accuracy(probs, requested) == pytest.approx(0.9)


def _brute_force_min(cost):
    n, m = cost.shape
    if n <= m:
        return min(sum(cost[i, p[i]] for i in range(n)) for p in itertools.permutations(range(m), n))
    return _brute_force_min(cost.T)


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (4, 6), (6, 4), (5, 5)])
def test_linear_assignment_is_optimal(shape):
    rng = np.random.default_rng(sum(shape))
    for trial in range(5):
        cost = rng.integers(0, 9, shape).astype(float) if trial % 2 else rng.standard_normal(shape)
        rows, cols = linear_assignment(cost)
        assert len(rows) == min(shape) and len(set(rows)) == len(rows) and len(set(cols)) == len(cols)
        assert cost[rows, cols].sum() == pytest.approx(_brute_force_min(cost))


def test_linear_assignment_matches_scipy_on_10x10():
    import scipy.optimize as scipy_opt      # in the test extra: a reference, never skipped
    rng = np.random.default_rng(3)
    for _ in range(20):
        cost = rng.integers(0, 100, (10, 10)).astype(float)
        r, c = linear_assignment(cost)
        r2, c2 = scipy_opt.linear_sum_assignment(cost)
        assert cost[r, c].sum() == cost[r2, c2].sum()


def test_code_agreement_finds_the_relabelling():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 10, 3000)
    perm = rng.permutation(10)
    digits = perm[codes]                                                           # code c always draws perm[c]
    res = code_agreement(codes, digits)
    assert res["agreement"] == 1.0 and res["mapping"] == {c: int(perm[c]) for c in range(10)}
    noisy = np.where(rng.random(3000) < 0.3, rng.integers(0, 10, 3000), digits)
    assert 0.7 < code_agreement(codes, noisy)["agreement"] < 0.8
    ignored = code_agreement(codes, rng.integers(0, 10, 3000))["agreement"]      # c unrelated to the class
    assert ignored < 0.2


# ----------------------------------------------------------------------------- precision and recall

def test_precision_recall_orientation_on_a_collapsed_generator():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((1500, 8))
    collapsed = real[rng.integers(0, 5, 1500)] + 0.01 * rng.standard_normal((1500, 8))   # near 5 real points
    pr = precision_recall(real, collapsed)
    assert pr["precision"] > 0.95 and pr["recall"] < 0.05
    swapped = precision_recall(collapsed, real)                                    # the orientation bug
    assert swapped["precision"] == pytest.approx(pr["recall"]) and swapped["recall"] == pytest.approx(pr["precision"])
    good = precision_recall(real, rng.standard_normal((1500, 8)))
    assert good["precision"] > 0.6 and good["recall"] > 0.6
    shifted = precision_recall(real, rng.standard_normal((1500, 8)) + 3)
    assert shifted["precision"] < 0.1 and shifted["recall"] < 0.1


# ----------------------------------------------------------------------------- the digit classifier

@pytest.fixture(scope="session")
def digits():
    """The bundled digits in a fixed random order (the file is sorted by label)."""
    images, labels = load_bundled_mnist()
    order = np.random.default_rng(0).permutation(len(images))
    return images[order], labels[order].astype(np.int64)


@pytest.fixture(scope="session")
def classifier(tmp_path_factory, digits):
    """A classifier trained on 2,000 digits for 3 epochs (seconds), cached in a temporary folder as seed 0."""
    images, labels = digits
    model, info = C.train_classifier(images[:2000], labels[:2000], epochs=3, lr=2e-3, seed=0)
    folder = tmp_path_factory.mktemp("classifier_cache")
    C.save_classifier(model, info, C.classifier_path(0, folder))
    return model, info, folder


def test_classifier_learns_digits(classifier, digits):
    model, info, _ = classifier
    images, labels = digits
    assert info["train_accuracy"] > 0.9
    _, probs = classify(model, images[5000:6000])                                  # digits it never saw
    assert (probs.argmax(1) == labels[5000:6000]).mean() > 0.85
    assert np.allclose(probs.sum(1), 1)


def test_classifier_cache_roundtrip_and_features(classifier, digits, monkeypatch):
    model, info, folder = classifier
    images, _ = digits
    monkeypatch.setenv("TINYGAN_CACHE", str(folder))
    assert C.cache_dir() == folder
    loaded, info2 = C.load_classifier(train=False)                                # from the npz, no pickle
    assert info2 == info
    f1, p1 = classify(model, images[:50])
    f2, p2 = classify(loaded, images[:50])
    assert f1.shape == (50, C.FEATURE_DIM) and np.array_equal(f1, f2) and np.array_equal(p1, p2)
    assert (f1 >= 0).all()                                                          # after ReLU
    with pytest.raises(FileNotFoundError):
        C.load_classifier(seed=123, train=False)


def test_classifier_weights_come_from_the_seed_alone(digits):
    images, labels = digits
    tg.manual_seed(42)
    before = tg.get_rng_state()
    a, _ = C.train_classifier(images[:128], labels[:128], epochs=1, seed=7)
    assert tg.get_rng_state() == before                                            # global generator untouched
    b, _ = C.train_classifier(images[:128], labels[:128], epochs=1, seed=7)
    c, _ = C.train_classifier(images[:128], labels[:128], epochs=1, seed=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert not np.array_equal(sa["conv1.weight"], sc["conv1.weight"])


def test_to_classifier_input_resizes_and_greys():
    rng = np.random.default_rng(0)
    rgb = rng.uniform(-1, 1, (3, 3, 32, 32)).astype(np.float32)
    x = to_classifier_input(rgb)
    assert x.shape == (3, 1, 28, 28) and x.dtype == np.float32 and x.min() >= -1 and x.max() <= 1
    grey = np.full((2, 3, 28, 28), 0, np.uint8)
    grey[:, 0] = 255                                                                # pure red
    assert np.allclose(to_classifier_input(grey), 0.299 * 255 / 127.5 - 1, atol=1 / 127.5)
    u8 = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    assert np.array_equal(to_classifier_input(u8)[:, 0], u8 / np.float32(127.5) - 1)


def test_frechet_distance_real_halves_small_noise_large(classifier, digits):
    model, _, _ = classifier
    images, _ = digits
    fa, _ = classify(model, images[2000:3500])
    fb, _ = classify(model, images[3500:5000])
    noise = np.random.default_rng(0).uniform(-1, 1, (1500, 1, 28, 28)).astype(np.float32)
    fn, _ = classify(model, noise)
    real_vs_real = frechet_distance(fa, fb)
    real_vs_noise = frechet_distance(fa, fn)
    assert real_vs_noise > 20 * real_vs_real


def test_collapsed_image_generator_has_high_precision_low_recall(classifier, digits):
    model, _, _ = classifier
    images, labels = digits
    rng = np.random.default_rng(0)
    few = images[2000:2004].astype(np.float32) / 127.5 - 1                      # 4 real digits
    fake = few[rng.integers(0, 4, 1000)][:, None] + 0.02 * rng.standard_normal((1000, 1, 28, 28))
    fake = np.clip(fake, -1, 1).astype(np.float32)
    real_feat, _ = classify(model, images[3000:4000])
    fake_feat, fake_probs = classify(model, fake)
    pr = precision_recall(real_feat, fake_feat)
    assert pr["precision"] > 0.7 and pr["recall"] < 0.1
    cov = class_coverage(class_histogram(fake_probs))
    assert cov["classes_present"] <= 4                                            # mode collapse: missing digits


# ----------------------------------------------------------------------------- tinygan eval

def _tiny_run(tmp_path, **kw):
    from tinygan.run import TrainConfig, train
    base = dict(steps=2, batch_size=16, nz=8, ngf=8, ndf=8, sample_every=100, checkpoint_every=100,
                progress=False, out=str(tmp_path / "run"))
    base.update(kw)
    if base.get("model") in ("mlp", "cgan-mlp") or base.get("dataset") in TOY_DATASETS:
        del base["ngf"], base["ndf"]                    # no convolutions: the flags would be refused
    return train(TrainConfig(**base))


def test_eval_cli_on_a_toy_run(tmp_path, capsys):
    from tinygan.cli import main
    _tiny_run(tmp_path, model="mlp", dataset="ring8")
    ckpt = tmp_path / "run" / "checkpoint.npz"
    assert main(["eval", "--checkpoint", str(ckpt), "--n", "400"]) == 0
    out = capsys.readouterr().out
    assert "modes captured" in out and "high-quality samples" in out
    result = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert result["step"] == 2 and result["n"] == 400 and result["dataset"] == "ring8"
    for key in ("modes_captured", "high_quality", "reverse_kl", "precision", "recall"):
        assert key in result["metrics"]
    assert 0 <= result["metrics"]["modes_captured"] <= 8


@pytest.mark.parametrize("model", ["dcgan", "cgan", "infogan"])
def test_eval_on_image_runs(tmp_path, classifier, model):
    from tinygan.metrics.evaluate import evaluate_checkpoint, format_table
    _, _, folder = classifier
    _tiny_run(tmp_path, model=model, dataset="mnist")
    with pytest.warns(SampleSizeWarning):
        result = evaluate_checkpoint(tmp_path / "run" / "checkpoint.npz", n=200, classifier_dir=folder, max_real=1000)
    m = result["metrics"]
    for key in ("frechet_distance", "frechet_distance_real_vs_real", "precision", "recall", "inception_score",
                "classes_present", "class_counts"):
        assert key in m, key
    assert m["frechet_distance"] > m["frechet_distance_real_vs_real"]             # two steps of training
    assert ("conditional_accuracy" in m) == (model == "cgan")
    assert ("code_agreement" in m) == (model == "infogan")
    assert any("NOT Inception" in n for n in result["notes"]) and result["warnings"]
    assert "Frechet distance" in format_table(result)
    json.dumps(result)                                                             # JSON-able
