"""Clustering agreement of predicted (and measured) profiles with cancer types."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def cluster_agreement(profiles: np.ndarray, labels: Sequence, seed: int = 0, max_pcs: int = 50) -> dict:
    """k-means on standardised, PCA-reduced profiles; AMI and ARI against ``labels``.

    Parameters
    ----------
    profiles
        ``(n_items, n_genes)``: one row per WSI (mean expression) or per spot.
    labels
        Cancer type of each row; ``k`` is the number of distinct labels.
    seed
        Seed of PCA and k-means.
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score
    from sklearn.preprocessing import StandardScaler

    labels = np.asarray(labels, dtype=object)
    k = len(set(labels.tolist()))
    if k < 2 or len(labels) <= k:
        return {
            "ami": None,
            "ari": None,
            "k": k,
            "reason": "needs >= 2 cancer types and more items than types",
        }
    z = StandardScaler().fit_transform(np.asarray(profiles, dtype=np.float64))
    n_pc = int(min(max_pcs, z.shape[0] - 1, z.shape[1]))
    z = PCA(n_components=n_pc, random_state=seed, svd_solver="full").fit_transform(z)
    pred = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(z)
    return {
        "ami": float(adjusted_mutual_info_score(labels, pred)),
        "ari": float(adjusted_rand_score(labels, pred)),
        "k": k,
        "n_pcs": n_pc,
    }
