"""Tissue domains: cluster each WSI's measured and predicted expression and compare the partitions.

STPath compares Leiden clusters of predictions with Leiden clusters of the truth; STAMP and the
HEtoSGEBench benchmark score domains against pathologist regions. Per WSI, with ``--domains``:

- genes: the WSI's top :data:`N_GENES` scored genes by measured variance within the WSI (ties by
  panel position; genes constant in the measured WSI are left out), the same genes on both sides;
- each side: genes z-scored within the WSI (population SD; a constant gene is 0), then PCA to
  :data:`N_PCS` components (scikit-learn, randomized SVD seeded with the run's seed);
- clustering: ``leiden`` (leidenalg on the symmetrised, unweighted :data:`K_GRAPH`-nearest-
  neighbour graph of the components, RBConfiguration at resolution :data:`RESOLUTION`, seeded) or
  ``kmeans`` (scikit-learn, ``domain_clusters`` clusters, 10 starts, seeded). A side whose selected
  genes are all constant in the WSI (a constant prediction) is one domain;
- scores (``sklearn.metrics``): ARI, AMI, NMI, homogeneity and completeness of the predicted
  domains against the measured ones (the measured domains are the reference labels); with
  ``--domain-key COLUMN`` also both against the annotation (spots without one left out), the
  measured domains giving the ceiling a prediction can reach.

Per WSI the values are per-WSI statistics (``wsi_stats/wsis.parquet``, :data:`DOMAINS`), and each
is a declared per-WSI metric (:data:`DOMAIN_METRICS`).
"""

from __future__ import annotations

import numpy as np

from ._declare import WsiMetric

#: genes per WSI that the domains are built from (by measured variance within the WSI)
N_GENES = 2000
#: principal components per side
N_PCS = 20
#: neighbours of the Leiden graph
K_GRAPH = 15
#: Leiden resolution (RBConfiguration, i.e. modularity with resolution)
RESOLUTION = 1.0
#: the partition scores, in ``sklearn.metrics``' names
SCORES = ("ari", "ami", "nmi", "homogeneity", "completeness")
#: the per-WSI statistics, in the order of :attr:`gpc_bench.stats.WsiStats.domains`' columns
DOMAINS = (
    "domains_truth_n", "domains_pred_n", "domains_annotation_n",
    *(f"domain_{s}" for s in SCORES),
    *(f"annot_pred_{s}" for s in SCORES),
    *(f"annot_truth_{s}" for s in SCORES),
)  # fmt: skip
METHODS = ("leiden", "kmeans")


def resolve_method(method: str) -> str:
    """``"auto"``: ``"leiden"`` where leidenalg and igraph import, else ``"kmeans"``."""
    if method != "auto":
        return method
    try:
        import igraph  # noqa: F401
        import leidenalg  # noqa: F401
    except ImportError:
        return "kmeans"
    return "leiden"


def check_method(method: str) -> None:
    """Refuse ``leiden`` where leidenalg or igraph is missing (a config recorded elsewhere), before
    any spot is read."""
    if method == "leiden" and resolve_method("auto") != "leiden":
        from .._errors import InputError

        raise InputError(
            "--domains leiden needs leidenalg and igraph, which are not installed",
            "pip install 'gpc-bench[domains]', or score with --domains kmeans",
        )


def select_genes(var: np.ndarray, n: int = N_GENES) -> np.ndarray:
    """The ``n`` columns with the largest variance ``var`` (per gene over the WSI's spots), ties by
    position, in panel order; constant ones left out."""
    var = np.asarray(var, dtype=np.float64)
    cand = np.flatnonzero(var > 0)
    return np.sort(cand[np.lexsort((cand, -var[cand]))][:n])


def embed(x: np.ndarray, seed: int, n_pcs: int = N_PCS) -> np.ndarray | None:
    """The PCA components of ``x`` (spots x genes) z-scored per gene; ``None`` when every column is
    constant (one domain)."""
    from sklearn.decomposition import PCA

    z = np.asarray(x, dtype=np.float64)
    z = z - z.mean(axis=0)
    sd = np.sqrt((z * z).mean(axis=0))
    keep = sd > 0
    if not keep.any() or z.shape[0] < 3:
        return None
    z = z[:, keep] / sd[keep]
    k = min(n_pcs, z.shape[0] - 1, z.shape[1])
    return PCA(n_components=k, svd_solver="randomized", random_state=seed).fit_transform(z)


def cluster(emb: np.ndarray | None, n_spots: int, method: str, seed: int, k: int) -> np.ndarray:
    """Domain labels of ``n_spots`` spots from their embedding (all 0 for ``None``)."""
    if emb is None:
        return np.zeros(n_spots, np.int64)
    if method == "kmeans":
        from sklearn.cluster import KMeans

        k = min(k, len(np.unique(emb, axis=0)))
        if k < 2:
            return np.zeros(n_spots, np.int64)
        return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(emb).astype(np.int64)
    return _leiden(emb, seed)


def _leiden(emb: np.ndarray, seed: int) -> np.ndarray:
    import igraph
    import leidenalg
    from sklearn.neighbors import NearestNeighbors

    n = len(emb)
    k = min(K_GRAPH, n - 1)
    # brute force: a k-d tree degrades in 20 dimensions, a WSI's few thousand spots do not
    idx = (
        NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(emb).kneighbors(emb, return_distance=False)
    )
    src = np.repeat(np.arange(n), k)
    dst = np.asarray(idx)[:, 1:].ravel()
    edges = np.unique(np.sort(np.stack([src, dst], axis=1), axis=1), axis=0)  # undirected, once each
    edges = edges[edges[:, 0] != edges[:, 1]]
    graph = igraph.Graph(n=n, edges=edges.tolist())
    part = leidenalg.find_partition(
        graph,
        leidenalg.RBConfigurationVertexPartition,
        resolution_parameter=RESOLUTION,
        n_iterations=-1,
        seed=int(seed) % (2**31),
    )
    return np.asarray(part.membership, dtype=np.int64)


def agreement(reference: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """ARI, AMI, NMI, homogeneity and completeness of ``labels`` against ``reference``."""
    from sklearn import metrics

    if len(reference) < 2:
        return np.full(len(SCORES), np.nan)
    return np.array(
        [
            metrics.adjusted_rand_score(reference, labels),
            metrics.adjusted_mutual_info_score(reference, labels),
            metrics.normalized_mutual_info_score(reference, labels),
            metrics.homogeneity_score(reference, labels),
            metrics.completeness_score(reference, labels),
        ]
    )


def wsi_domains(
    x: np.ndarray,
    y: np.ndarray,
    method: str,
    seed: int,
    k: int,
    annotation: np.ndarray | None = None,
    truth_var: np.ndarray | None = None,
) -> np.ndarray:
    """The :data:`DOMAINS` values of one WSI: ``x``, ``y`` its measured and predicted expression
    (spots x scored genes), ``annotation`` a label per spot (``None``, or NaN / empty for none),
    ``truth_var`` each gene's measured variance over the WSI (from the streamed moments; computed
    from ``x`` when ``None``)."""
    var = np.asarray(x, dtype=np.float64).var(axis=0) if truth_var is None else truth_var
    cols = select_genes(var)
    out = np.full(len(DOMAINS), np.nan)
    n = x.shape[0]
    dom_x = cluster(embed(x[:, cols], seed), n, method, seed, k)
    dom_y = cluster(embed(y[:, cols], seed), n, method, seed, k)
    out[0], out[1] = len(np.unique(dom_x)), len(np.unique(dom_y))
    s = len(SCORES)
    out[3 : 3 + s] = agreement(dom_x, dom_y)
    if annotation is not None:
        lab = np.asarray(annotation, dtype=object)
        known = np.array([_known(v) for v in lab], dtype=bool)
        if known.any():
            ref = lab[known].astype(str)
            out[2] = len(np.unique(ref))
            out[3 + s : 3 + 2 * s] = agreement(ref, dom_y[known])
            out[3 + 2 * s :] = agreement(ref, dom_x[known])
    return out


def _known(v) -> bool:
    if v is None:
        return False
    if isinstance(v, float) and np.isnan(v):
        return False
    return str(v).strip() not in ("", "nan", "NaN", "None")


def _column(name: str):
    i = DOMAINS.index(name)

    def compute(stats, config=None) -> np.ndarray:
        return stats.domains[:, i].astype(np.float64)

    return compute


_LABELS = {"ari": "ARI", "ami": "AMI", "nmi": "NMI", "homogeneity": "homogeneity"} | {
    "completeness": "completeness"
}
#: the declared per-WSI metrics: predicted against measured domains, then both against the annotation
DOMAIN_METRICS: tuple[WsiMetric, ...] = (
    *(
        WsiMetric(f"domain_{s}", f"domains {_LABELS[s]}\npred vs measured", needs="domains",
                  compute=_column(f"domain_{s}"), family="clustering")
        for s in SCORES
    ),
    *(
        WsiMetric(f"annot_{side}_{s}", f"domains {_LABELS[s]}\n{what} vs annotation", needs="annotation",
                  compute=_column(f"annot_{side}_{s}"), family="clustering")
        for side, what in (("pred", "predicted"), ("truth", "measured"))
        for s in SCORES
    ),
)  # fmt: skip
