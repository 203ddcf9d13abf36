"""Payload detectors: one module per surface form that a float vector takes in text or bytes.

Every detector has the same small interface (:class:`Detector`). A detector yields
:class:`~scanner.model.Candidate` objects for arrays it decoded, and may yield nested
:class:`~scanner.model.Record` objects for containers it opened (a gzip ``!!binary`` body), which the
pipeline scans again with every detector, and :class:`~scanner.model.Diagnostic` objects for input it
could not decode (a corrupt gzip, a cut-off base64 string): counted and reported, never raised.

Adding a format is one new module plus one line in :data:`REGISTRY` (and, if no existing prefilter
kind covers how it starts, one pattern in :mod:`scanner.prefilter`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from scanner.model import Candidate, Diagnostic, Record

from . import (
    base64_floats,
    numeric_list,
    numpy_repr,
    otlp_array,
    quantized,
    sparsevec,
    vcr_binary,
    yaml_list,
)

# Vectors shorter than this are not worth a candidate: the 1–3 dim pgvector tests and point coordinates
# stop here, cheaply, before any parsing. The classifier makes the finer call above it.
MIN_DIM = 16


@runtime_checkable
class Detector(Protocol):
    """The one interface every payload format implements."""

    name: str
    openers: frozenset[str]
    """Kinds of :mod:`scanner.prefilter` hit this format starts with; the pipeline hands the detector
    only the windows around those hits. A new format reuses a kind or adds its pattern there."""

    def may_contain(self, data: bytes) -> bool:
        """A cheap test on raw bytes; False means :meth:`find` would certainly find nothing."""
        ...

    def find(self, record: Record) -> Iterable[Candidate | Record | Diagnostic]:
        """Decode every array of this format in ``record.data``, and open nested containers."""
        ...


REGISTRY: tuple[Detector, ...] = (
    vcr_binary.DETECTOR,
    otlp_array.DETECTOR,
    numpy_repr.DETECTOR,
    quantized.DETECTOR,
    sparsevec.DETECTOR,
    yaml_list.DETECTOR,
    numeric_list.DETECTOR,
    base64_floats.DETECTOR,
)
"""Ordered by specificity: when two detectors claim overlapping bytes, the earlier one wins."""


def by_name(name: str) -> Detector:
    for detector in REGISTRY:
        if detector.name == name:
            return detector
    raise KeyError(name)
