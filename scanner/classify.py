"""Is this numeric array an embedding, or something else that happens to be a long list of numbers?

Decoys that real logs are full of: integer histograms and ids, probability vectors, pixel rows,
timestamps and other sorted sequences, coordinates, constant fills, and random bytes that a base64
decoder turned into garbage floats. Embeddings are dense, signed, centred near zero, finite and of
bounded magnitude. A random Gaussian unit vector passes too, on purpose: it is still a vector worth
reporting, it just comes from no known model (the fingerprinter says so).

Everything is computed per dimension group as whole-matrix numpy operations, because the hot path
must judge tens of thousands of vectors a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scanner.model import Candidate

ACCEPT = 0.5
MIN_DIM = 16
QUANTISED = frozenset({"int8", "uint8", "binary", "ubinary"})


@dataclass(frozen=True, slots=True)
class Verdict:
    score: float
    reasons: tuple[str, ...]
    non_finite: int = 0

    @property
    def is_embedding(self) -> bool:
        return self.score >= ACCEPT


def classify(candidates: Sequence[Candidate]) -> list[Verdict]:
    """Judge candidates in batches of equal dimension; returns one Verdict per candidate, in order."""
    verdicts: list[Verdict | None] = [None] * len(candidates)
    groups: dict[tuple[int, bool], list[int]] = {}
    for i, cand in enumerate(candidates):
        n = int(cand.values.shape[0])
        if n < MIN_DIM and not cand.truncated:
            verdicts[i] = Verdict(0.0, (f"only {n} values: too short for an embedding",))
            continue
        groups.setdefault((n, cand.encoding in QUANTISED), []).append(i)
    for (_, quantised), idx in groups.items():
        matrix = np.stack([candidates[i].values for i in idx]).astype(np.float64, copy=False)
        for i, verdict in zip(idx, _judge(matrix, quantised, [candidates[i] for i in idx]), strict=True):
            verdicts[i] = verdict
    return verdicts  # type: ignore[return-value]


def _judge(m: np.ndarray, quantised: bool, cands: list[Candidate]) -> list[Verdict]:
    n, d = m.shape
    finite = np.isfinite(m)
    non_finite = d - finite.sum(axis=1)
    safe = np.where(finite, m, 0.0)
    absval = np.abs(safe)
    max_abs = absval.max(axis=1)
    pos = (safe > 0).mean(axis=1)
    neg = (safe < 0).mean(axis=1)
    zero = (safe == 0).mean(axis=1)
    integral = (safe == np.round(safe)).all(axis=1)
    sums = safe.sum(axis=1)
    diffs = np.diff(safe, axis=1)
    monotonic = (diffs >= 0).all(axis=1) | (diffs <= 0).all(axis=1)
    norms = np.sqrt((safe * safe).sum(axis=1))
    sorted_rows = np.sort(safe, axis=1)
    distinct = 1.0 + (np.diff(sorted_rows, axis=1) != 0).sum(axis=1)

    out = []
    for r in range(n):
        reasons: list[str] = []
        score = 1.0
        bad = int(non_finite[r])
        if bad:
            if bad > max(1, d // 100):
                out.append(Verdict(0.0, (f"{bad} of {d} values are NaN or infinite",), bad))
                continue
            reasons.append(f"{bad} NaN/infinite values ignored")
        if max_abs[r] == 0:
            out.append(Verdict(0.0, ("all zeros",), bad))
            continue
        if d < MIN_DIM:
            out.append(Verdict(0.6, (f"summarised print: only {d} edge values visible",), bad))
            continue
        if quantised:
            reasons.append("quantised integers under an embedding key")
            out.append(Verdict(0.8, tuple(reasons), bad))
            continue
        if integral[r]:
            out.append(Verdict(0.05, ("integers only: counts, ids or a histogram",), bad))
            continue
        if neg[r] == 0 and abs(sums[r] - 1.0) < 1e-3:
            out.append(Verdict(0.05, ("non-negative and sums to 1: a probability distribution",), bad))
            continue
        if monotonic[r] and d >= MIN_DIM:
            out.append(Verdict(0.05, ("sorted sequence: timestamps, offsets or bin edges",), bad))
            continue
        if max_abs[r] > 1000:
            out.append(
                Verdict(0.05, (f"magnitudes up to {max_abs[r]:.3g}: measurements, not an embedding",), bad)
            )
            continue
        if neg[r] == 0:
            score *= 0.2
            reasons.append("no negative values (pixels, probabilities or scores)")
        elif min(pos[r], neg[r]) < 0.15:
            score *= 0.5
            reasons.append(f"lopsided signs ({pos[r]:.0%} positive)")
        else:
            reasons.append(f"signed, centred values ({pos[r]:.0%} positive)")
        if distinct[r] < 0.5 * d:
            score *= 0.4
            reasons.append(f"only {int(distinct[r])} distinct values in {d}")
        if zero[r] > 0.5:
            score *= 0.5
            reasons.append(f"{zero[r]:.0%} zeros (sparse)")
        if abs(norms[r] - 1.0) < 0.01:
            reasons.append("unit norm")
        else:
            reasons.append(f"norm {norms[r]:.3g}")
        if cands[r].precision == "low" and d < 64:
            score *= 0.6
            reasons.append("few significant digits")
        out.append(Verdict(round(score, 3), tuple(reasons), bad))
    return out
