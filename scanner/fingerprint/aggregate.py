"""Pool the evidence of many vectors from one source (a log file, an index, a service).

One source usually talks to one model, so evidence adds up: 50 vectors each weakly pointing at a model
are strong together, and a random-looking vector among them does not flip the answer. Log likelihood
ratios are summed per model across every vector added (any size); a model that cannot emit some of
the sizes seen is penalised for each such vector.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from scanner.model import ModelGuess

from .scoring import MAX_GUESSES, MIN_CONFIDENCE, UNKNOWN_PRIOR, Fingerprinter, default_fingerprinter

_MISSING_SIZE_LLR = math.log(0.05)


class SourceAggregator:
    """Accumulate vectors from one source with :meth:`add`; :meth:`result` gives the pooled guesses."""

    def __init__(self, fingerprinter: Fingerprinter | None = None) -> None:
        self.fp = fingerprinter or default_fingerprinter()
        self.count = 0
        self._llr: dict[str, float] = defaultdict(float)
        self._seen: dict[str, int] = defaultdict(int)
        self._kinds: dict[str, set[int | None]] = defaultdict(set)
        self._dims: set[int] = set()

    def add(self, matrix: np.ndarray, precision: str | None = None) -> None:
        """Add an (n, d) batch (or one vector) of same-size vectors from this source."""
        x = np.asarray(matrix, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.shape[0] == 0:
            return
        ev = self.fp.evidence(x, precision)
        group = self.fp.group(x.shape[1])
        self.count += x.shape[0]
        self._dims.add(x.shape[1])
        for j, hy in enumerate(group.hyps):
            self._llr[hy.spec.id] += float(ev["llr"][:, j].sum())
            self._seen[hy.spec.id] += x.shape[0]
            self._kinds[hy.spec.id].add(hy.truncated_from)

    def result(self) -> list[ModelGuess]:
        """Pooled ranked guesses; empty when the pooled evidence points at no model."""
        if not self._llr:
            return []
        models = list(self._llr)
        logits = np.array(
            [
                math.log(self.fp.catalog.get(m).prior)  # type: ignore[union-attr]
                + self._llr[m]
                + (self.count - self._seen[m]) * _MISSING_SIZE_LLR
                for m in models
            ]
        )
        all_logits = np.append(logits, math.log(UNKNOWN_PRIOR))
        post = np.exp(all_logits - all_logits.max())
        post /= post.sum()
        order = [j for j in np.argsort(-post[:-1]) if post[j] >= MIN_CONFIDENCE][:MAX_GUESSES]
        out = []
        for j in order:
            model = models[j]
            kinds = self._kinds[model] - {None}
            out.append(
                ModelGuess(
                    model=model,
                    confidence=round(float(post[j]), 4),
                    reasons=(
                        f"pooled over {self.count} vector(s) from one source (sizes {sorted(self._dims)})",
                        f"summed evidence {self._llr[model]:+.1f} nats for this model against unrelated vectors",
                    ),
                    truncated_from=max(kinds) if kinds else None,
                )
            )
        return out
