"""Evaluate a trained generator: the metrics that fit its model and data, as one JSON-able dict.

=====================  ==================================================================
data / model           metrics
=====================  ==================================================================
toy mixture            modes captured, % high quality, reverse KL (:mod:`.mixtures`);
                       k-NN precision / recall in data space against real samples
swissroll              k-NN precision / recall in data space
InfoGAN on a mixture   + code agreement between c_cat and the nearest mode
MNIST (bundled)        Frechet distance, IS, class histogram, k-NN precision / recall,
                       all in the digit classifier's feature space (not Inception);
                       a real-vs-real Frechet distance as the noise floor
CGAN, ACGAN on MNIST   + conditional accuracy (classified as the requested label)
InfoGAN on MNIST       + code agreement between c_cat and the predicted digit
other image data       Frechet distance and precision / recall in the digit
                       classifier's space, relative only; class-based metrics skipped
=====================  ==================================================================
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from tinygan.data import TOY_DATASETS, get_dataset, sample_toy, toy_modes
from tinygan.gan.sampling import generate
from tinygan.metrics.classifier import classify, load_classifier
from tinygan.metrics.image_metrics import (class_coverage, class_histogram, code_agreement, conditional_accuracy,
                                           frechet_distance, inception_score, precision_recall)
from tinygan.metrics.mixtures import assign_to_modes, mixture_metrics
from tinygan.metrics.sample_size import SampleSizeWarning
from tinygan.run import CheckpointFile, load_generator

DEFAULT_N = 2500          # VEEGAN/PacGAN's sample count; also above the 1,000 FID warning threshold
MAX_REAL = 10000          # real images used for the Frechet distance


def evaluate_checkpoint(path, n: int = DEFAULT_N, device: str = "cpu", seed: int = 0, classifier_dir=None,
                        log: Callable[[str], None] | None = None, max_real: int = MAX_REAL) -> dict:
    """Load the generator of checkpoint ``path``, draw ``n`` samples and compute its metrics.

    Returns the dict of :func:`evaluate_generator` plus ``checkpoint`` and ``step``.
    """
    G, config, _ = load_generator(path, device=device)
    result = evaluate_generator(G, config, n=n, device=device, seed=seed, classifier_dir=classifier_dir, log=log,
                                max_real=max_real)
    with CheckpointFile(path) as ck:
        step = ck.meta.get("step")
    return {"checkpoint": str(path), "step": step, **result}


def evaluate_generator(G, config, n: int = DEFAULT_N, device: str = "cpu", seed: int = 0, classifier_dir=None,
                       log: Callable[[str], None] | None = None, max_real: int = MAX_REAL) -> dict:
    """Metrics for generator ``G`` trained with ``config`` (a TrainConfig): see the module docstring.

    ``max_real`` caps the real images whose features are computed (a random subset).

    Returns ``{"model", "loss", "dataset", "n", "seed", "metrics": {...},
    "notes": [...], "warnings": [...]}``; every ``SampleSizeWarning`` raised
    on the way is listed in ``warnings``, and every warning is re-emitted.
    """
    if n < 2:
        raise ValueError(f"eval: --n must be at least 2, got {n}")
    rng = np.random.default_rng([seed, 7])
    inputs = G.sample_inputs(n, rng)                    # z (n, nz) [+ labels / c_cat, c_cont]
    fake = generate(G, inputs, device=device)           # (n, d) points or (n, C, H, W) images in [-1, 1]
    num_codes = getattr(G, "num_categories", None)      # InfoGAN: k values of the categorical code
    result = {"model": config.model, "loss": config.loss, "dataset": config.dataset, "n": n, "seed": seed,
              "metrics": {}, "notes": []}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if config.dataset in TOY_DATASETS:
            _toy_metrics(result, fake, inputs, config.dataset, seed, num_codes)
        else:
            _image_metrics(result, fake, inputs, config, seed, classifier_dir, log, num_codes, max_real)
    result["warnings"] = [str(w.message) for w in caught if issubclass(w.category, SampleSizeWarning)]
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return result


# --------------------------------------------------------------------------- toy data

def _toy_metrics(result: dict, fake: np.ndarray, inputs: dict, dataset: str, seed: int,
                 num_codes: int | None = None) -> None:
    metrics = result["metrics"]
    if dataset != "swissroll":
        mix = mixture_metrics(fake, dataset, n=None)
        result["notes"].append(mix.pop("rule"))
        metrics.update(mix)
    real = sample_toy(dataset, len(fake), np.random.default_rng([seed, 8]))
    metrics.update(precision_recall(real, fake.reshape(len(fake), -1)))
    result["notes"].append("precision/recall: k-NN manifolds (k=3) in data space against as many real samples")
    if "c_cat" in inputs and dataset != "swissroll":
        centres, std = toy_modes(dataset)
        nearest, _ = assign_to_modes(fake.reshape(len(fake), -1), centres, std)
        agree = code_agreement(inputs["c_cat"], nearest, num_codes=num_codes, num_classes=len(centres))
        metrics["code_agreement"] = agree["agreement"]
        metrics["code_mapping"] = agree["mapping"]


# --------------------------------------------------------------------------- images

def _real_images(config) -> tuple[np.ndarray, np.ndarray]:
    """The run's real images (uint8 (N, C, H, W)) and labels, without resizing (the classifier resizes)."""
    ds = get_dataset(config.dataset, data_dir=config.data_dir, image_size=None, download=False)
    return ds.images, ds.labels


def _image_metrics(result: dict, fake: np.ndarray, inputs: dict, config, seed: int, classifier_dir, log,
                   num_codes: int | None = None, max_real: int = MAX_REAL) -> None:
    metrics, notes = result["metrics"], result["notes"]
    model, info = load_classifier(directory=classifier_dir, log=log)
    notes.append("feature network: tinygan's MNIST digit classifier (2 conv + 2 linear, "
                 f"{info.get('train_accuracy', float('nan')):.1%} train accuracy), NOT Inception-v3: "
                 "the Frechet distance and IS below are not comparable with published FID/IS")
    digits = config.dataset == "mnist"
    if not digits:
        notes.append(f"dataset {config.dataset!r} is not digits: only the Frechet distance and precision/recall "
                     "are reported, and only for comparing runs on the same data")
    images, labels = _real_images(config)
    order = np.random.default_rng([seed, 9]).permutation(len(images))[:max_real]
    real_feat, _ = classify(model, images[order])                         # (N_real, 128)
    fake_feat, fake_probs = classify(model, fake)                          # (n, 128), (n, 10)

    metrics["frechet_distance"] = frechet_distance(fake_feat, real_feat)
    half = min(len(fake), len(real_feat) // 2)
    if half >= 2:                                                          # the same estimator on real vs real
        metrics["frechet_distance_real_vs_real"] = frechet_distance(real_feat[:half], real_feat[half:2 * half])
    pr = precision_recall(real_feat[:len(fake)], fake_feat)
    metrics["precision"], metrics["recall"] = pr["precision"], pr["recall"]
    if not digits:
        return
    metrics["inception_score"], metrics["inception_score_std"] = inception_score(fake_probs)
    coverage = class_coverage(class_histogram(fake_probs))
    metrics["classes_present"] = coverage["classes_present"]
    metrics["missing_classes"] = coverage["missing_classes"]
    metrics["class_reverse_kl"] = coverage["reverse_kl"]
    metrics["class_counts"] = coverage["counts"]
    if "labels" in inputs:                                                 # CGAN, ACGAN
        metrics["conditional_accuracy"] = conditional_accuracy(fake_probs, inputs["labels"])
    if "c_cat" in inputs:                                                  # InfoGAN
        agree = code_agreement(inputs["c_cat"], fake_probs, num_codes=num_codes)
        metrics["code_agreement"] = agree["agreement"]
        metrics["code_mapping"] = agree["mapping"]


# --------------------------------------------------------------------------- printing

_LABELS = {
    "modes_captured": "modes captured", "num_modes": "modes in the target", "high_quality": "high-quality samples",
    "reverse_kl": "reverse KL (modes)", "precision": "precision (k=3)", "recall": "recall (k=3)",
    "frechet_distance": "Frechet distance (digit-classifier features)",
    "frechet_distance_real_vs_real": "  same, real vs real (noise floor)",
    "inception_score": "Inception-style score (digit classifier)", "inception_score_std": "  std over 10 splits",
    "classes_present": "classes present (>= 10% of fair share)", "missing_classes": "missing classes",
    "class_reverse_kl": "reverse KL (classes)", "class_counts": "class counts",
    "conditional_accuracy": "conditional accuracy (CGAN, ACGAN)", "code_agreement": "code agreement (InfoGAN)",
    "code_mapping": "code -> class", "mode_counts": "samples per mode", "k": "k", "n": "samples",
}
_PERCENT = ("high_quality", "precision", "recall", "conditional_accuracy", "code_agreement")


def format_table(result: dict) -> str:
    """A two-column text table of ``result["metrics"]`` with a header line, notes and warnings."""
    head = (f"{result.get('checkpoint', 'generator')}: model {result['model']}, loss {result['loss']}, "
            f"dataset {result['dataset']}, step {result.get('step', '?')}, {result['n']} samples")
    rows = []
    for key, value in result["metrics"].items():
        if key in ("n", "k"):
            continue
        if key in _PERCENT:
            text = f"{100 * value:.1f}%"
        elif isinstance(value, float):
            text = f"{value:.4g}"
        else:
            text = str(value)
        rows.append((_LABELS.get(key, key), text))
    width = max((len(r[0]) for r in rows), default=10)
    lines = [head, "-" * len(head)] + [f"{name:<{width}}  {text}" for name, text in rows]
    lines += [f"note: {n}" for n in result.get("notes", [])]
    lines += [f"warning: {w}" for w in result.get("warnings", [])]
    return "\n".join(lines)


def default_json_path(checkpoint) -> Path:
    """``eval.json`` beside the checkpoint."""
    return Path(checkpoint).parent / "eval.json"
