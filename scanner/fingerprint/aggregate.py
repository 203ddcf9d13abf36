"""Pool the evidence of many vectors from one source (a log file, an index, a service).

One source usually talks to one model, so evidence adds up: 50 vectors each weakly pointing at a model
are strong together, and a random-looking vector among them does not flip the answer. Log likelihood
ratios are summed per model across every vector added (any size); a model that cannot emit some of
the sizes seen is penalised for each such vector.

:class:`SourcePool` applies this on the scan path: per source, the evidence of every vector seen so far
(this record included) is pooled, and when it names one model the weaker vectors of that source are
upgraded before the rules see them. Nothing waits for later records, so streaming alerts are not
delayed; a vector that was alerted before the pool was confident keeps its first answer.
"""

from __future__ import annotations

import math
from collections import OrderedDict, defaultdict
from collections.abc import Sequence

import numpy as np

from scanner.model import Finding, ModelGuess

from .scoring import (
    EVIDENCE_MEMO,
    MAX_GUESSES,
    MIN_CONFIDENCE,
    UNKNOWN_PRIOR,
    Fingerprinter,
    default_fingerprinter,
)
from .signature import MIN_PREFIX

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
        self.add_evidence(x.shape[1], self.fp.evidence(x, precision)["llr"])

    def add_evidence(self, dim: int, llr: np.ndarray) -> None:
        """Add per-vector log likelihood ratios already computed by :meth:`Fingerprinter.evidence`."""
        x = llr
        group = self.fp.group(dim)
        self.count += x.shape[0]
        self._dims.add(dim)
        for j, hy in enumerate(group.hyps):
            self._llr[hy.spec.id] += float(llr[:, j].sum())
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


POOL_MIN_VECTORS = 3  # fewer vectors than this are not a pattern
POOL_CONFIDENCE = 0.9  # the pooled answer must itself be confident
POOL_MAX_SOURCES = 4096  # least recently used sources are forgotten beyond this (bounded memory)
POOL_MAX_HASHES = 4096  # per source: a vector repeated in the source is counted once (up to this many)
OVERRIDE_CONFIDENCE = 0.5  # a vector's own answer at least this confident is never replaced


class SourcePool:
    """Pooled per-source evidence on the scan path: :meth:`apply` to each record's findings.

    A vector is upgraded to the pooled model only when (a) the source has at least
    ``POOL_MIN_VECTORS`` distinct vectors and the pooled answer is at least ``POOL_CONFIDENCE``,
    (b) the vector's own evidence for that model is not negative (it looks at least as much like the
    model as like an unrelated vector), and (c) its own top guess is not another model with confidence
    ``OVERRIDE_CONFIDENCE`` or more. The new guess says so in its reasons. numpy only: one
    :meth:`Fingerprinter.evidence` call per (record, size).
    """

    def __init__(
        self, fingerprinter: Fingerprinter | None = None, max_sources: int = POOL_MAX_SOURCES
    ) -> None:
        self.fp = fingerprinter or default_fingerprinter()
        self.max_sources = max_sources
        self._sources: OrderedDict[str, tuple[SourceAggregator, set[str]]] = OrderedDict()
        self.upgraded = 0

    def apply(self, findings: Sequence[Finding]) -> int:
        """Add these findings to their sources' pools and upgrade the weak ones in place; returns how many."""
        groups: dict[tuple[str, int], list[Finding]] = defaultdict(list)
        for f in findings:
            if poolable(f):
                groups[(f.source.identity, f.candidate.summarize().length)].append(f)
        upgraded = 0
        for (source, dim), items in groups.items():
            agg, seen = self._source(source)
            ev = _reused_evidence(items)
            if ev is None:
                matrix = np.stack([f.candidate.values for f in items]).astype(np.float32, copy=False)
                ev = self.fp.evidence(matrix, [f.candidate.precision for f in items])
            fresh = []
            for i, f in enumerate(items):
                key = f.sha256
                if key not in seen:
                    fresh.append(i)
                    if len(seen) < POOL_MAX_HASHES:
                        seen.add(key)
            if fresh:
                agg.add_evidence(dim, ev["llr"][fresh])
            if agg.count < POOL_MIN_VECTORS:
                continue
            pooled = agg.result()
            if not pooled or pooled[0].confidence < POOL_CONFIDENCE:
                continue
            upgraded += self._upgrade(items, ev, dim, pooled[0], agg.count)
        if upgraded:
            self._share(findings)
        self.upgraded += upgraded
        return upgraded

    def _source(self, source: str) -> tuple[SourceAggregator, set[str]]:
        entry = self._sources.get(source)
        if entry is None:
            entry = self._sources[source] = (SourceAggregator(self.fp), set())
            if len(self._sources) > self.max_sources:
                self._sources.popitem(last=False)
        else:
            self._sources.move_to_end(source)
        return entry

    def _upgrade(
        self, items: list[Finding], ev: dict[str, np.ndarray], dim: int, pooled: ModelGuess, count: int
    ) -> int:
        g = self.fp.group(dim)
        cols = [j for j, hy in enumerate(g.hyps) if hy.spec.id == pooled.model]
        if not cols:
            return 0
        done = 0
        for i, f in enumerate(items):
            own = f.fingerprint[0] if f.fingerprint else None
            if own is not None and own.model == pooled.model and own.confidence >= pooled.confidence:
                continue
            if own is not None and own.model != pooled.model and own.confidence >= OVERRIDE_CONFIDENCE:
                continue
            j = max(cols, key=lambda c: ev["llr"][i, c])
            if ev["llr"][i, j] < 0:
                continue
            guess = self.fp._make(g, ev, i, j, pooled.confidence)
            reason = f"pooled with {count - 1} vector(s) from this source that point at the same model"
            f.fingerprint = [
                ModelGuess(guess.model, guess.confidence, (*guess.reasons, reason), guess.truncated_from),
                *[x for x in f.fingerprint if x.model != pooled.model],
            ][:MAX_GUESSES]
            done += 1
        return done

    @staticmethod
    def _share(findings: Sequence[Finding]) -> None:
        """The text recorded beside a vector carries the vector's (possibly upgraded) answer."""
        by_hash = {f.sha256: f.fingerprint for f in findings if f.kind == "embedding"}
        for f in findings:
            if f.kind != "embedding" and f.sha256 in by_hash:
                f.fingerprint = by_hash[f.sha256]


def poolable(f: Finding) -> bool:
    """Whether :meth:`SourcePool.apply` pools this finding's evidence (and so reads its values when
    the pipeline's evidence for it is gone)."""
    if f.kind != "embedding" or f.candidate.truncated:
        return False
    s = f.candidate.summarize()
    # A NaN or Inf is scored -LLR_CLIP for every model: it would drown the pool.
    return s.flat and s.length >= MIN_PREFIX and s.finite


def _reused_evidence(items: Sequence[Finding]) -> dict[str, np.ndarray] | None:
    """The rows of the evidence the pipeline computed for these findings' guesses, when one batch
    holds them all (the usual case: a record's vectors of one size); consumed, so it is not kept."""
    memos = [f._memo.pop(EVIDENCE_MEMO, None) for f in items]
    batch = memos[0][0] if memos[0] is not None else None
    if batch is None or any(m is None or m[0] is not batch for m in memos):
        return None
    rows = np.fromiter((m[1] for m in memos), dtype=np.intp, count=len(memos))  # type: ignore[index]
    return {key: value[rows] for key, value in batch.items()}
