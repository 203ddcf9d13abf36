"""Placeholder fingerprinter until the catalog-and-signature one lands: it names no model.

It keeps the pipeline's interface (``Fingerprinter().guess_batch``) so the spine can run end to end.
"""

from __future__ import annotations

from collections.abc import Sequence

from scanner.model import Candidate, ModelGuess


class Fingerprinter:
    def guess_batch(self, candidates: Sequence[Candidate]) -> list[list[ModelGuess]]:
        return [[] for _ in candidates]
