"""Clusters of codes: k-means, and its accuracy under the best one-to-one assignment of clusters
to digits (the Hungarian algorithm)."""

from __future__ import annotations

import numpy as np
from scipy.cluster.vq import kmeans2
from scipy.optimize import linear_sum_assignment


def kmeans(points: np.ndarray, k: int, seed: int = 0, restarts: int = 5) -> np.ndarray:
    """Cluster labels of k-means (k-means++ starts; the best of `restarts` runs by distortion)."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= len(points):
        raise ValueError(f"kmeans: k must be a whole number from 1 to the number of points ({len(points)}), got {k!r}")
    if isinstance(restarts, bool) or not isinstance(restarts, int | np.integer) or restarts < 1:
        raise ValueError(f"kmeans: restarts must be a whole number ≥ 1, got {restarts!r}")
    ### BEGIN SOLUTION exercise 12
    points = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    best, best_cost = None, np.inf
    for r in range(restarts):
        centres, labels = kmeans2(points, k, minit="++", seed=np.random.default_rng([seed, r]))
        cost = ((points - centres[labels]) ** 2).sum()
        if cost < best_cost:
            best, best_cost = labels, cost
    return best
    ### END SOLUTION


def cluster_accuracy(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Accuracy under the best one-to-one map of clusters to labels (Hungarian assignment)."""
    for name, values in (("labels", labels), ("clusters", clusters)):
        values = np.asarray(values)
        if values.size == 0 or values.dtype.kind not in "iu" or values.min() < 0:
            raise ValueError(
                f"cluster_accuracy: {name} must be a non-empty array of whole numbers ≥ 0, got {values.dtype} "
                f"{values.shape}" + (f" holding {values.min()}" if values.size and values.dtype.kind in "iuf" else "")
            )
    ### BEGIN SOLUTION exercise 12
    labels, clusters = np.asarray(labels), np.asarray(clusters)
    if labels.shape != clusters.shape:
        raise ValueError(f"labels {labels.shape} and clusters {clusters.shape} differ in shape")
    n = max(labels.max(), clusters.max()) + 1
    counts = np.zeros((n, n), dtype=np.int64)
    np.add.at(counts, (clusters, labels), 1)
    rows, cols = linear_sum_assignment(-counts)
    return counts[rows, cols].sum() / len(labels)
    ### END SOLUTION


def cluster_digits(labels: np.ndarray, clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (clusters × labels) matrix of counts, and the label each cluster stands for under the best
    one-to-one map (the Hungarian assignment that cluster_accuracy scores; -1 for a cluster left over)."""
    labels, clusters = np.asarray(labels), np.asarray(clusters)
    counts = np.zeros((clusters.max() + 1, labels.max() + 1), dtype=np.int64)
    np.add.at(counts, (clusters, labels), 1)
    rows, cols = linear_sum_assignment(-counts)
    label_of = np.full(len(counts), -1)
    label_of[rows] = cols
    return counts, label_of
