"""Fingerprinting: which model made a vector (catalog + statistical signatures + evidence in context).

Public API (numpy only; torch is never imported here):

* :class:`Fingerprinter` — ``guess(values, precision, hints)`` and ``guess_batch(matrix, …)``;
* :func:`default_fingerprinter` — the packaged data, loaded once;
* :class:`SourceAggregator` — many vectors from one source, one model: pooled evidence;
* :class:`SourcePool` — the same on the scan path: upgrades weak vectors of a source per record;
* :func:`confirm` — mark a model confirmed after a round-trip inversion (cosine ≥ 0.9).
"""

from __future__ import annotations

from .aggregate import SourceAggregator, SourcePool
from .catalog import Catalog, CatalogError, ModelSpec, load_catalog
from .scoring import Fingerprinter, confirm, default_fingerprinter

__all__ = [
    "Catalog",
    "CatalogError",
    "Fingerprinter",
    "ModelSpec",
    "SourceAggregator",
    "SourcePool",
    "confirm",
    "default_fingerprinter",
    "load_catalog",
]
