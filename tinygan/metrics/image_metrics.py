"""Image metrics in the feature space of tinygan's digit classifier (not Inception).

Every function here takes plain NumPy arrays: features (N, d) or class
probabilities (N, K) from :func:`tinygan.metrics.classifier.classify`, so
each can be read (and tested) on its own.

* :func:`frechet_distance`: the FID recipe (Heusel et al. 2017), with the
  digit classifier's 128-D penultimate layer in place of Inception-v3's pool3.
* :func:`inception_score`: the IS recipe (Salimans et al. 2016) with the
  digit classifier's class probabilities.
* :func:`class_histogram`, :func:`class_coverage`: which digits are drawn.
* :func:`conditional_accuracy`: CGAN, the share of samples classified as the
  requested label.
* :func:`code_agreement`: InfoGAN, how well the categorical code matches the
  classes under the best one-to-one matching (:func:`linear_assignment`).
* :func:`precision_recall`: k-NN precision and recall (Kynkaanniemi et al. 2019).

The matrix square root is written with NumPy's symmetric eigen-decomposition
(tinygan's runtime needs only NumPy and Pillow); the tests check it against
``scipy.linalg.sqrtm``.
"""
from __future__ import annotations

import numpy as np

from tinygan.metrics.mixtures import reverse_kl_to_uniform
from tinygan.metrics.sample_size import warn_if_few

MIN_SAMPLES = 1000          # below this, FID / IS / PR estimates are unstable (a warning, not an error)


# --------------------------------------------------------------------------- Frechet distance

def sqrtm_psd(a: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix.

    With the eigen-decomposition A = V diag(w) V^T (``numpy.linalg.eigh``)::

        A^{1/2} = V diag(sqrt(max(w, 0))) V^T

    Eigenvalues that rounding made slightly negative are clipped to 0.
    """
    a = np.asarray(a, np.float64)
    a = (a + a.T) / 2                                       # symmetrise away rounding
    w, v = np.linalg.eigh(a)                                # w (d,), v (d, d)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T        # V diag(sqrt w) V^T


def trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float:
    """tr((S1 S2)^{1/2}) for covariance matrices S1, S2, through a symmetric matrix.

    S1 S2 is not symmetric, but it is similar to M = S1^{1/2} S2 S1^{1/2}
    (M = S1^{1/2} (S1 S2) S1^{-1/2}), which is symmetric PSD, so the two have
    the same eigenvalues and::

        tr((S1 S2)^{1/2}) = sum_i sqrt(lambda_i(M))

    This avoids the complex arithmetic of a general ``sqrtm``.
    """
    r = sqrtm_psd(s1)
    m = r @ np.asarray(s2, np.float64) @ r                   # S1^{1/2} S2 S1^{1/2}  (d, d)
    lam = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(lam, 0, None)).sum())


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and unbiased covariance (d, d) of features (N, d), as pytorch-fid computes them."""
    f = np.asarray(features, np.float64)
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def frechet_distance_from_stats(mu1, sigma1, mu2, sigma2) -> float:
    """The Frechet (2-Wasserstein) distance between N(mu1, S1) and N(mu2, S2)::

        d^2 = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2})
    """
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt_product(sigma1, sigma2)
    return float(max(value, 0.0))          # rounding can make an exact 0 slightly negative


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """The FID recipe on two feature sets (N_a, d), (N_b, d): fit a Gaussian to each, then d^2 above.

    With tinygan's digit classifier as the feature network this is *not* the
    FID of the literature (which uses Inception-v3); compare it only between
    runs evaluated the same way.  Warns (``SampleSizeWarning``) when either
    side has fewer than 1,000 samples or no more samples than dimensions.
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"frechet_distance: feature sets must be (N, d) with the same d, got {a.shape}, {b.shape}")
    n, d = min(len(a), len(b)), a.shape[1]
    if not warn_if_few(n, MIN_SAMPLES, "frechet_distance"):
        warn_if_few(n, d + 1, f"frechet_distance (covariance of {d}-D features)")
    return frechet_distance_from_stats(*feature_statistics(a), *feature_statistics(b))


# --------------------------------------------------------------------------- class-based scores

def inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """The IS recipe with any classifier's probabilities p(y|x) (N, K): ``(mean, std)`` over splits.

    For each of ``splits`` equal parts, with p(y) the part's mean of p(y|x)::

        IS = exp( E_x KL(p(y|x) || p(y)) ) = exp( E_x sum_y p(y|x) (log p(y|x) - log p(y)) )

    It is high (at most K) when each sample is classified confidently *and*
    the classes are used evenly; 1 when all samples look alike.
    """
    p = np.asarray(probs, np.float64)
    warn_if_few(len(p), MIN_SAMPLES, "inception_score")
    scores = []
    for part in np.array_split(p, max(1, min(splits, len(p)))):
        py = part.mean(axis=0, keepdims=True)                                  # (1, K) marginal p(y)
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(part > 0, part * (np.log(part) - np.log(py)), 0.0).sum(axis=1)   # (n,)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def class_histogram(probs_or_labels, num_classes: int = 10) -> np.ndarray:
    """How many samples fall in each class: int64 (K,), from probabilities (N, K) (argmax) or labels (N,)."""
    a = np.asarray(probs_or_labels)
    labels = a.argmax(axis=1) if a.ndim == 2 else a.astype(np.int64)
    return np.bincount(labels, minlength=num_classes)[:num_classes]


def class_coverage(counts, min_share: float = 0.1) -> dict:
    """Summary of a class histogram for mode collapse.

    A class is *present* when it receives at least ``min_share`` of its fair
    share n/K (by default 10%: a classifier's occasional mistakes then do not
    make a dropped digit look present).  ``reverse_kl`` is KL(hist || uniform),
    as for the toy mixtures: 0 for even use, log K for a single class.
    """
    c = np.asarray(counts, np.int64)
    k, n = len(c), int(c.sum())
    present = c >= min_share * n / k if n else np.zeros(k, bool)
    return {"classes_present": int(present.sum()), "num_classes": k,
            "missing_classes": [int(i) for i in np.flatnonzero(~present)],
            "reverse_kl": reverse_kl_to_uniform(c), "counts": c.tolist()}


def conditional_accuracy(probs: np.ndarray, requested) -> float:
    """CGAN: the fraction of samples whose predicted class is the label they were generated for."""
    pred = np.asarray(probs).argmax(axis=1)
    req = np.asarray(requested).astype(np.int64)
    if pred.shape != req.shape:
        raise ValueError(f"conditional_accuracy: {len(pred)} predictions for {len(req)} requested labels")
    return float((pred == req).mean()) if len(req) else 0.0


# --------------------------------------------------------------------------- InfoGAN: best matching

def linear_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the minimum-cost one-to-one matching (the Hungarian algorithm).

    ``cost`` is (n, m); min(n, m) pairs are returned as ``(rows, cols)``,
    sorted by row, minimising ``cost[rows, cols].sum()`` (as
    ``scipy.optimize.linear_sum_assignment``).

    The O(n^2 m) shortest-augmenting-path form with potentials u (rows) and v
    (columns): rows are added one at a time; Dijkstra over reduced costs
    c[i, j] - u[i] - v[j] >= 0 finds the cheapest augmenting path for the new
    row, the potentials move by the path's slack ``delta`` so that matched
    edges stay tight (reduced cost 0), and the path is flipped.
    """
    c = np.asarray(cost, np.float64)
    transposed = c.shape[0] > c.shape[1]
    if transposed:                       # the algorithm wants rows <= columns
        c = c.T
    n, m = c.shape
    u, v = np.zeros(n + 1), np.zeros(m + 1)          # potentials; index 0 is a virtual row/column
    match = np.zeros(m + 1, dtype=np.int64)          # match[j] = 1-based row matched to column j (0: free)
    way = np.zeros(m + 1, dtype=np.int64)            # previous column on the shortest path
    for i in range(1, n + 1):
        match[0], j0 = i, 0
        minv = np.full(m + 1, np.inf)                # shortest reduced distance to each column
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = match[j0]
            free = ~used[1:]
            reduced = c[i0 - 1] - u[i0] - v[1:]                       # (m,) reduced costs from row i0
            better = free & (reduced < minv[1:])
            minv[1:][better] = reduced[better]
            way[1:][better] = j0
            candidates = np.where(free, minv[1:], np.inf)
            j1 = int(candidates.argmin()) + 1
            delta = candidates[j1 - 1]
            u[match[used]] += delta                                   # keep matched edges tight
            v[used] -= delta
            minv[~used] -= delta
            j0 = j1
            if match[j0] == 0:
                break
        while j0:                                                     # flip the augmenting path
            j1 = way[j0]
            match[j0] = match[j1]
            j0 = j1
    cols = np.flatnonzero(match[1:])
    rows = match[1:][cols] - 1
    if transposed:
        rows, cols = cols, rows
    order = np.argsort(rows)
    return rows[order], cols[order]


def code_agreement(codes, probs_or_labels, num_codes: int | None = None, num_classes: int = 10) -> dict:
    """InfoGAN: how well the categorical code c predicts the class, up to a relabelling.

    InfoGAN learns *some* one-to-one correspondence between the k values of c
    and the digits, not necessarily c = digit.  With the confusion matrix
    C[c, y] = #samples drawn with code c and classified as y, the agreement is
    the best one-to-one matching pi (:func:`linear_assignment` on -C)::

        agreement = max_pi sum_c C[c, pi(c)] / N

    1.0: each code value draws exactly one digit; about 1/K for a code that
    the generator ignores.
    """
    codes = np.asarray(codes).astype(np.int64)
    a = np.asarray(probs_or_labels)
    pred = a.argmax(axis=1) if a.ndim == 2 else a.astype(np.int64)
    k = int(num_codes or codes.max() + 1)
    confusion = np.zeros((k, num_classes), dtype=np.int64)
    np.add.at(confusion, (codes, pred), 1)                            # C[c, y] += 1 per sample
    rows, cols = linear_assignment(-confusion)
    matched = int(confusion[rows, cols].sum())
    return {"agreement": matched / len(codes) if len(codes) else 0.0,
            "mapping": {int(r): int(c) for r, c in zip(rows, cols)},
            "confusion": confusion.tolist()}


# --------------------------------------------------------------------------- precision and recall

def _pairwise_sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """||a_i - b_j||^2 = |a_i|^2 + |b_j|^2 - 2 a_i . b_j for a (n, d), b (m, d) -> (n, m), clipped at 0."""
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.maximum(sq, 0)


def knn_radii(features: np.ndarray, k: int = 3, chunk: int = 1024) -> np.ndarray:
    """Distance from each point to its k-th nearest *other* point in the same set: (N,).

    The point itself is at distance 0 and is the first neighbour, so this is
    the (k + 1)-th smallest distance in its row.
    """
    f = np.asarray(features, np.float64)
    if len(f) <= k:
        raise ValueError(f"knn_radii: need more than k = {k} points, got {len(f)}")
    out = np.empty(len(f))
    for s in range(0, len(f), chunk):
        d = _pairwise_sq_dists(f[s:s + chunk], f)                       # (c, N)
        out[s:s + chunk] = np.sqrt(np.partition(d, k, axis=1)[:, k])    # (k+1)-th smallest, self first
    return out


def manifold_coverage(reference: np.ndarray, radii: np.ndarray, queries: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """For each query, whether it lies in the union of balls B(reference_j, radii_j): bool (M,)."""
    ref, q = np.asarray(reference, np.float64), np.asarray(queries, np.float64)
    inside = np.empty(len(q), dtype=bool)
    r2 = radii ** 2
    for s in range(0, len(q), chunk):
        d = _pairwise_sq_dists(q[s:s + chunk], ref)                     # (c, N_ref)
        inside[s:s + chunk] = (d <= r2[None, :]).any(axis=1)
    return inside


def precision_recall(real_features: np.ndarray, fake_features: np.ndarray, k: int = 3) -> dict:
    """Improved precision and recall (Kynkaanniemi et al., NeurIPS 2019), with k = 3.

    Each set's *manifold* is the union of balls around its points, each ball's
    radius the distance to that point's k-th nearest neighbour in the same set::

        precision = (1/M) sum_g  1[ fake_g in manifold(real) ]     how many fakes look real
        recall    = (1/N) sum_r  1[ real_r in manifold(fake) ]     how much of the real data is covered

    Orientation matters: a generator collapsed onto a few real images has high
    precision (its samples sit among real ones) and low recall (the balls
    around its tightly bunched samples are tiny and miss most real images).
    Swapping the two arguments swaps the two numbers.
    """
    real, fake = np.asarray(real_features, np.float64), np.asarray(fake_features, np.float64)
    warn_if_few(min(len(real), len(fake)), MIN_SAMPLES, "precision_recall")
    precision = manifold_coverage(real, knn_radii(real, k), fake).mean()
    recall = manifold_coverage(fake, knn_radii(fake, k), real).mean()
    return {"precision": float(precision), "recall": float(recall), "k": k}
