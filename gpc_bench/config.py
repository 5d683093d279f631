"""What a score depends on: one frozen config of every option that changes a number.

Options that only change speed (threads, kernel, block size, cache folder) are not here; they live
in :mod:`gpc_bench.settings`. A run records its config whole in ``summary.json`` (``config``), and
:meth:`ScoreConfig.from_dict` reads it back, so that a run can be repeated exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ._errors import InputError

if TYPE_CHECKING:
    from .io.gmt import PathwayCollection

CONSTANT_PREDICTION = ("zero", "exclude")
VARIANCE_BINS = ("quantile", "log")
CLUSTER = (None, "wsi", "spot")
#: pathway activity per spot: mean of within-WSI z-scores, or decoupler's ulm / aucell
ACTIVITY = (None, "mean-z", "ulm", "aucell")
#: tissue-domain clustering (``"auto"`` resolves to the first that is installed)
DOMAINS = (None, "leiden", "kmeans")
PROTOCOLS = ("default", "published", "hest-pooled", "stpath-pooled")


@dataclass(frozen=True)
class ScoreConfig:
    """Every scoring option that changes a number.

    Attributes
    ----------
    constant_prediction
        ``"zero"``: r = 0 where the truth varies but the prediction is constant in a WSI;
        ``"exclude"``: leave such genes out (the published code).
    min_genes
        Pathways with fewer scored genes get no score.
    variance_bins
        ``"quantile"`` (equal-count levels) or ``"log"`` (equal-width in log10 variance).
    n_levels
        Number of variance levels.
    hvg
        Top-N variable genes per cancer type (``"50"``), or a JSON list / a folder of
        ``<CANCER>.json`` lists (:func:`gpc_bench.metrics.hvg.read_hvg_lists`).
    hvg_map
        ``"TYPE=LIST"`` pairs: cohort cancer type TYPE reads the HVG list named LIST (``BRCA=IDC``).
    cluster
        ``None``, ``"wsi"`` or ``"spot"``: clustering agreement with the cancer types.
    cluster_spots
        Spots subsampled for ``cluster="spot"``.
    truth_log1p
        Apply log1p to the measured values (raw counts), with no library-size normalisation.
    truth_normalize
        Raw counts as truth: scale each spot's counts to this total (over all its genes), then log1p
        (the usual ``normalize_total`` + ``log1p``; e.g. ``1e4``). Excludes ``truth_log1p``.
    depth_key
        The truth's obs column to use, as given, as the per-spot depth covariate of the
        depth-adjusted scores; ``None``: ``log1p(obs["total_counts"])`` when present, else
        ``log1p`` of the genes detected per spot (:func:`gpc_bench.metrics.depth.depth_source`).
    activity
        ``None`` (off), ``"mean-z"``, ``"ulm"`` or ``"aucell"``: also compute each spot's pathway
        activity, the same way on truth and predictions, and report PAC
        (:mod:`gpc_bench.metrics.activity`; ulm and aucell through decoupler, the ``activity``
        extra). ``True`` reads as ``"mean-z"``. A spot-level extra with its own cost
        (docs/performance.md), so off by default. It changes no other number.
    spatial
        Also compute Moran's I of every gene, measured and predicted, on each WSI's k-nearest-
        neighbour spot graph (``obsm["spatial"]``), and the spatial per-WSI metrics
        (:mod:`gpc_bench.metrics.spatial`); a spot-level extra, off by default.
    domains
        ``None`` (off), ``"leiden"`` or ``"kmeans"`` (``"auto"``: Leiden where leidenalg is
        installed, else k-means; the config records which): cluster each WSI's measured and
        predicted spots into tissue domains and report their agreement
        (:mod:`gpc_bench.metrics.domains`).
    domain_key
        The truth's obs column of a spot annotation (pathologist regions): also score both
        partitions against it. Implies ``domains="auto"`` when ``domains`` is not given.
    domain_clusters
        Clusters per WSI and side with ``domains="kmeans"``.
    seed
        Seed of the clustering and the spot subsample.
    pathways
        GMT files and/or collection folders; ``None``: the shipped default collection.
    collection_id
        The id of the collection the pathways resolved to (filled in by ``score``; when given, a
        collection with another id is refused).
    protocol
        ``"default"``; ``"published"``: the HistoPrism paper's computation (constant predictions
        excluded, no minimum gene count, HVGs from HEST-Benchmark-style lists, the collection given);
        ``"hest-pooled"``: gene r over all spots of each test split at once (``splits``), as
        HEST-Benchmark computes it, instead of per WSI; ``"stpath-pooled"``: over all spots of
        each cancer type (STPath's ``"all"``). Both fix ``constant_prediction="exclude"`` (a
        constant input gives ``pearsonr``'s NaN) and their HVG PCC uses ``np.mean`` over genes and
        splits, so one undefined gene makes a split's mean NaN. See :mod:`gpc_bench.splits` and
        :func:`deviations`.
    splits
        With ``hest-pooled``: a CSV of ``sample_id,split`` (HEST-Benchmark's test splits); ``None``:
        each WSI is its own split.
    """

    constant_prediction: str = "zero"
    min_genes: int = 10
    variance_bins: str = "quantile"
    n_levels: int = 10
    hvg: str = "50"
    hvg_map: tuple[str, ...] | None = None
    cluster: str | None = None
    cluster_spots: int = 2000
    truth_log1p: bool = False
    truth_normalize: float | None = None
    depth_key: str | None = None
    activity: str | None = None
    spatial: bool = False
    domains: str | None = None
    domain_key: str | None = None
    domain_clusters: int = 7
    seed: int = 0
    pathways: tuple[str, ...] | None = None
    collection_id: str | None = None
    protocol: str = "default"
    splits: str | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise in place once
        self._check_types()
        if self.cluster == "none":
            set_(self, "cluster", None)
        self._normalise_extras()
        set_(self, "hvg", str(self.hvg))
        set_(self, "hvg_map", _pairs(self.hvg_map))
        if self.hvg_map is not None and self.hvg.isdigit():
            raise InputError(
                "--hvg-map names HVG lists, but --hvg is a top-N count",
                "give --hvg FOLDER of lists with --hvg-map, or leave --hvg-map out",
            )
        if self.pathways is not None:
            items = [self.pathways] if isinstance(self.pathways, str | Path) else self.pathways
            set_(self, "pathways", tuple(str(p) for p in items) or None)
        if self.constant_prediction not in CONSTANT_PREDICTION:
            raise InputError(
                f"constant_prediction must be 'zero' or 'exclude', not {self.constant_prediction!r}"
            )
        if self.variance_bins not in VARIANCE_BINS:
            raise InputError(f"variance_bins must be 'quantile' or 'log', not {self.variance_bins!r}")
        if self.cluster not in CLUSTER:
            raise InputError(f"cluster must be 'none', 'wsi' or 'spot', not {self.cluster!r}")
        if self.truth_normalize is not None:
            set_(self, "truth_normalize", float(self.truth_normalize))
            if not self.truth_normalize > 0:
                raise InputError(f"truth_normalize must be a positive target sum, not {self.truth_normalize}")
            if self.truth_log1p:
                raise InputError(
                    "truth_log1p and truth_normalize both given",
                    "--truth-normalize already applies log1p after scaling; pass only one",
                )
        if self.protocol not in PROTOCOLS:
            raise InputError(f"protocol must be one of {PROTOCOLS}, not {self.protocol!r}")
        if self.splits is not None:
            set_(self, "splits", str(self.splits))
            if self.protocol != "hest-pooled":
                raise InputError(
                    f"--splits assigns HEST-Benchmark test splits, but the protocol is {self.protocol!r}",
                    "use --splits with --protocol hest-pooled",
                )
        if self.protocol in FIXED:
            wrong = {k: getattr(self, k) for k, v in FIXED[self.protocol].items() if getattr(self, k) != v}
            if wrong:
                raise InputError(
                    f"--protocol {self.protocol} scores with {FIXED[self.protocol]}, but {wrong} was given",
                    f"leave those options out with --protocol {self.protocol}, or use --protocol default",
                )
        if self.protocol == "published":
            if self.hvg.isdigit():
                raise InputError(
                    "--protocol published needs the HEST-Benchmark HVG lists: --hvg FOLDER of <CANCER>.json",
                    "HEST-Benchmark ships var_50genes.json per cancer type ({'genes': [...]})",
                )
            if self.pathways is None:
                raise InputError(
                    "--protocol published needs the published pathway sets: --pathways FOLDER",
                    "gpc-bench pathways import histoprism final_*_genes.pkl --out sets; --pathways sets",
                )
        for name, low in (("min_genes", 0), ("n_levels", 1), ("cluster_spots", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise InputError(f"{name} must be an integer >= {low}, not {value!r}")

    def _check_types(self) -> None:
        """Refuse values of the wrong type (a hand-edited or foreign config), naming the field."""
        expect = {
            "constant_prediction": (str,), "min_genes": (int,), "variance_bins": (str,), "n_levels": (int,),
            "hvg": (str, int), "hvg_map": (str, list, tuple, dict, type(None)), "cluster": (str, type(None)),
            "cluster_spots": (int,), "truth_log1p": (bool,), "activity": (bool, str, type(None)),
            "spatial": (bool,),
            "domains": (str, type(None)), "domain_key": (str, type(None)), "domain_clusters": (int,),
            "truth_normalize": (int, float, type(None)), "depth_key": (str, type(None)), "seed": (int,),
            "pathways": (str, Path, list, tuple, type(None)), "collection_id": (str, type(None)),
            "protocol": (str,), "splits": (str, Path, type(None)),
        }  # fmt: skip
        for name, types in expect.items():
            value = getattr(self, name)
            bad = not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
            if name == "pathways" and isinstance(value, list | tuple):
                bad = not all(isinstance(v, str | Path) for v in value)
            if bad:
                names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
                raise InputError(f"config field {name} must be {names}, not {value!r}")
        if not 0 <= self.seed < 2**32:
            raise InputError(f"seed must be between 0 and 2**32 - 1, not {self.seed}")

    def _normalise_extras(self) -> None:
        """The spot-level extras: ``activity`` and ``domains`` spelled one way, checked."""
        set_ = object.__setattr__
        activity = {True: "mean-z", False: None, "none": None}.get(self.activity, self.activity)
        if activity not in ACTIVITY:
            raise InputError(f"activity must be 'mean-z', 'ulm' or 'aucell', not {self.activity!r}")
        set_(self, "activity", activity)
        domains = None if self.domains == "none" else self.domains
        if domains is None and self.domain_key is not None:
            domains = "auto"
        if domains == "auto":
            from .metrics.domains import resolve_method

            domains = resolve_method("auto")
        if domains not in DOMAINS:
            raise InputError(f"domains must be 'auto', 'leiden' or 'kmeans', not {self.domains!r}")
        set_(self, "domains", domains)
        if not isinstance(self.domain_clusters, int) or self.domain_clusters < 2:
            raise InputError(f"domain_clusters must be an integer >= 2, not {self.domain_clusters!r}")

    def replace(self, **changes) -> ScoreConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (what ``summary.json`` records under ``config``)."""
        d = dataclasses.asdict(self)
        d["pathways"] = list(self.pathways) if self.pathways is not None else None
        d["hvg_map"] = list(self.hvg_map) if self.hvg_map is not None else None
        return d

    def hvg_names(self) -> dict[str, str]:
        """``hvg_map`` as cancer type -> list name."""
        return dict(p.split("=", 1) for p in self.hvg_map or ())

    @classmethod
    def from_file(cls, path: str | Path) -> ScoreConfig:
        """The config of a run's ``summary.json`` (its ``config`` block) or of a JSON config file."""
        import json

        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise InputError(
                f"--config {path} is not a readable JSON file: {err}",
                "give a run's summary.json, or a JSON object of config fields",
            ) from None
        if isinstance(raw, dict) and isinstance(raw.get("config"), dict):
            raw = raw["config"]
        if not isinstance(raw, dict):
            what = "null" if raw is None else type(raw).__name__
            raise InputError(
                f"--config {path} holds {what}, not a JSON object",
                "give a run's summary.json, or a JSON object of config fields",
            )
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, d: dict) -> ScoreConfig:
        """Read a recorded config back (unknown keys are refused)."""
        if not isinstance(d, dict):
            raise InputError(f"a score config must be a JSON object, not {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise InputError(f"unknown score config key(s) {unknown}", f"valid keys: {sorted(names)}")
        d = dict(d)
        if d.get("pathways") is not None:
            d["pathways"] = tuple(d["pathways"])
        return cls(**d)

    def differences(self, other: ScoreConfig) -> dict[str, tuple]:
        """Fields whose values differ: name -> (this, other)."""
        return {
            f.name: (getattr(self, f.name), getattr(other, f.name))
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        }


def _pairs(value) -> tuple[str, ...] | None:
    """``TYPE=LIST`` pairs (a dict, comma-separated strings, or a sequence of them), sorted."""
    if value is None:
        return None
    if isinstance(value, dict):
        items = [f"{k}={v}" for k, v in value.items()]
    else:
        items = [value] if isinstance(value, str) else list(value)
        items = [p.strip() for item in items for p in str(item).split(",") if p.strip()]
    out = {}
    for p in items:
        key, sep, val = p.partition("=")
        if not sep or not key.strip() or not val.strip():
            raise InputError(f"--hvg-map {p!r} is not TYPE=LIST", "e.g. --hvg-map BRCA=IDC")
        if out.get(key.strip(), val.strip()) != val.strip():
            raise InputError(f"--hvg-map maps {key.strip()!r} twice")
        out[key.strip()] = val.strip()
    return tuple(f"{k}={v}" for k, v in sorted(out.items())) or None


#: what the published computation fixes (HistoPrism's released evaluation code)
PUBLISHED = {"constant_prediction": "exclude", "min_genes": 1}
#: what each protocol fixes: the pooled ones take ``pearsonr``'s NaN for a constant input
FIXED = {
    "published": PUBLISHED,
    "hest-pooled": {"constant_prediction": "exclude"},
    "stpath-pooled": {"constant_prediction": "exclude"},
}


def for_protocol(protocol: str, **options) -> ScoreConfig:
    """A config for ``protocol`` with its fixed values filled in, then ``options``."""
    return ScoreConfig(**(FIXED.get(protocol, {}) | options | {"protocol": protocol}))


def deviations(
    cfg: ScoreConfig, collection: PathwayCollection | None = None, hvg_info: dict | None = None
) -> list[str]:
    """How ``cfg`` departs from the HistoPrism paper's published computation (empty: none).

    With ``collection`` (the :class:`~gpc_bench.io.gmt.Collection` scored) and ``hvg_info`` (the
    summary's ``hvg`` block) the pathways and HVGs are judged by what they hold, not by how they
    were given: the shipped collection passed by path is still the shipped collection.
    """
    out = []
    if cfg.constant_prediction != "exclude":
        out.append("a gene whose prediction is constant in a WSI scores r = 0 (published: left out)")
    if cfg.protocol == "hest-pooled":
        split = "each WSI (no --splits)" if cfg.splits is None else "each test split of --splits"
        out.append(
            f"gene r pooled over all spots of {split}, as HEST-Benchmark, not per WSI; HVG PCC is "
            "np.mean over genes and splits (one undefined r makes it NaN)"
        )
    if cfg.protocol == "stpath-pooled":
        out.append(
            "gene r pooled over all spots of each cancer type, as STPath's 'all', not per WSI; HVG PCC "
            "is np.mean over genes (one undefined r makes it NaN)"
        )
    if cfg.min_genes > 1:
        out.append(f"a pathway needs {cfg.min_genes} scored genes (published: no minimum)")
    top_n = cfg.hvg.isdigit() if hvg_info is None else hvg_info.get("source") != "user list"
    if top_n:
        out.append(
            f"HVGs: the top {cfg.hvg} of the scored truth per cancer type (published: HEST-Benchmark lists)"
        )
    kind = (
        ("shipped" if cfg.pathways is None else "given")
        if collection is None
        else collection_kind(collection)
    )
    if kind == "shipped":
        out.append("pathways: the shipped gpc-default collection (published: the released sets)")
    elif kind == "user":
        out.append(
            f"pathways: a user collection ({collection.collection_id}), neither the released sets "
            "(gpc-bench pathways import histoprism) nor the shipped one"
        )
    if cfg.variance_bins != "quantile" or cfg.n_levels != 10:
        out.append(f"{cfg.n_levels} {cfg.variance_bins} variance levels (published: 10 quantile levels)")
    if cfg.truth_normalize is not None:
        out.append("truth normalised to total counts before log1p (published: log1p only)")
    return out


def collection_kind(collection: PathwayCollection) -> str:
    """``"shipped"`` (the content of the shipped gpc-default collection), ``"published"`` (imported
    from HistoPrism's released sets, by its manifest, with the content it records) or ``"user"``."""
    import json

    from .io.gmt import default_collection_path

    default = default_collection_path()
    if default is not None:
        shipped = json.loads((default / "manifest.json").read_text(encoding="utf-8")).get("collection_id")
        if collection.collection_id == shipped:
            return "shipped"
    manifest = collection.manifest or {}
    if (
        manifest.get("name") == "histoprism-published"
        and manifest.get("collection_id") == collection.collection_id
    ):
        return "published"
    return "user"


def resolve_config(config: ScoreConfig | None, **kwargs) -> ScoreConfig:
    """A config from a :class:`ScoreConfig` and/or keyword arguments (keywords override it)."""
    if config is not None and not isinstance(config, ScoreConfig):
        raise InputError(f"config must be a ScoreConfig, not {type(config).__name__}")
    base = config or ScoreConfig()
    if "protocol" in kwargs and kwargs["protocol"] != base.protocol:  # its fixed values, unless given
        kwargs = FIXED.get(kwargs["protocol"], {}) | kwargs
    names = {f.name for f in dataclasses.fields(ScoreConfig)}
    unknown = sorted(set(kwargs) - names)
    if unknown:
        raise TypeError(f"unknown scoring option(s) {unknown}")
    return base.replace(**kwargs) if kwargs else base
