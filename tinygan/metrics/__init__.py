"""tinygan.metrics: how good (and how collapsed) are a generator's samples?

Toy mixtures (:mod:`.mixtures`, VEEGAN/PacGAN)
    ``mixture_metrics(samples, "grid25" | (centres, std), n=2500)`` -> modes
    captured, share of high-quality samples, reverse KL to uniform

Images, in the feature space of a small MNIST classifier trained with tinygan
(:mod:`.classifier`; *not* Inception, so not comparable with published FID/IS)
    ``load_classifier()``, ``classify(model, images)`` -> (features, probs)
    ``frechet_distance``, ``inception_score``, ``class_histogram``,
    ``class_coverage``, ``conditional_accuracy`` (CGAN), ``code_agreement``
    (InfoGAN), ``precision_recall`` (k-NN, Kynkaanniemi et al. 2019)

Whole generators (:mod:`.evaluate`, ``tinygan eval``)
    ``evaluate_checkpoint(path, n)``, ``evaluate_generator(G, config, n)``, ``format_table``

Too few samples give a ``SampleSizeWarning`` (the number is still returned).
"""
from tinygan.metrics.classifier import (DigitClassifier, cache_dir, classifier_path, classify, load_classifier,
                                        to_classifier_input, train_classifier)
from tinygan.metrics.evaluate import evaluate_checkpoint, evaluate_generator, format_table
from tinygan.metrics.image_metrics import (class_coverage, class_histogram, code_agreement, conditional_accuracy,
                                           feature_statistics, frechet_distance, frechet_distance_from_stats,
                                           inception_score, knn_radii, linear_assignment, precision_recall,
                                           sqrtm_psd, trace_sqrt_product)
from tinygan.metrics.mixtures import assign_to_modes, mixture_metrics, reverse_kl_to_uniform
from tinygan.metrics.sample_size import SampleSizeWarning

__all__ = [
    "mixture_metrics", "assign_to_modes", "reverse_kl_to_uniform",
    "DigitClassifier", "load_classifier", "train_classifier", "classify", "to_classifier_input", "cache_dir",
    "classifier_path",
    "frechet_distance", "frechet_distance_from_stats", "feature_statistics", "sqrtm_psd", "trace_sqrt_product",
    "inception_score", "class_histogram", "class_coverage", "conditional_accuracy", "code_agreement",
    "linear_assignment", "precision_recall", "knn_radii",
    "evaluate_checkpoint", "evaluate_generator", "format_table", "SampleSizeWarning",
]
