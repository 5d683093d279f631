"""Pathway curation: sources, size filter, Jaccard redundancy pruning, collection folders."""

from .collection import CurationResult, curate
from .prune import jaccard_prune

__all__ = ["CurationResult", "curate", "jaccard_prune"]
