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

import functools
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
        # float32, as the values are: every statistic below is well within its precision, and the
        # matrix passes are memory-bound (float64 cost 60% more per vector).
        matrix = np.stack([candidates[i].values for i in idx]).astype(np.float32, copy=False)
        # Random bytes read as floats reach 3e38: their squares overflow to inf, which the checks
        # below read as it is (a huge magnitude), so numpy's warnings would only be noise on stderr.
        with np.errstate(over="ignore", invalid="ignore"):
            judged = _judge(matrix, quantised, [candidates[i] for i in idx])
        for i, verdict in zip(idx, judged, strict=True):
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
    lag = _autocorrelation(safe) if d >= _MIN_SERIES else np.zeros((n, 0))
    lag_k = np.abs(lag).argmax(axis=1).tolist() if lag.shape[1] else [0] * n
    lag_top = lag[np.arange(n), lag_k].tolist() if lag.shape[1] else [0.0] * n
    spread = _log_iqr(absval, zero) if d >= MIN_DIM else np.zeros(n)
    # The verdict loop reads single elements: Python floats are several times cheaper to index and
    # compare than numpy scalars, and format the same.
    # Rows that every rejection below lets through, decided for the whole matrix at once: nearly
    # every row of a vector-dense log, which then skips the checks one by one.
    clean = np.zeros(n, dtype=bool)
    if not quantised and d >= MIN_DIM:
        clean = (
            (non_finite == 0)
            & (max_abs > 0)
            & ~integral
            & ~((neg == 0) & (np.abs(sums - 1.0) < 1e-3))
            & ~monotonic
            & (max_abs <= 1000)
            & (spread <= _MAX_LOG_IQR)
        )
        if lag.shape[1]:
            clean &= np.abs(np.asarray(lag_top)) <= _MAX_LAG_CORR
    clean = clean.tolist()
    positive = np.rint(pos * d).astype(np.int64).tolist()
    non_finite, max_abs, pos, neg, zero, integral = (
        a.tolist() for a in (non_finite, max_abs, pos, neg, zero, integral)
    )
    sums, monotonic, norms, distinct, spread = (
        a.tolist() for a in (sums, monotonic, norms, distinct, spread)
    )

    out = []
    for r in range(n):
        cand = cands[r]
        if clean[r]:
            out.append(_accepted(cand, d, positive[r], neg[r], distinct[r], zero[r], norms[r], 0, []))
            continue
        reasons: list[str] = []
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
            out.append(_judge_summary(cand, bool(integral[r]), float(max_abs[r]), d, bad))
            continue
        if quantised:
            smooth = abs(lag_top[r])
            out.append(
                _judge_quantised(
                    cand, bool(monotonic[r]), int(distinct[r]), bool(neg[r] == 0), smooth, d, bad, reasons
                )
            )
            continue
        if integral[r]:
            out.append(Verdict(0.05, ("integers only: counts, ids or a histogram",), bad))
            continue
        if neg[r] == 0 and abs(sums[r] - 1.0) < 1e-3:
            out.append(Verdict(0.05, ("non-negative and sums to 1: a probability distribution",), bad))
            continue
        if monotonic[r]:
            out.append(Verdict(0.05, ("sorted sequence: timestamps, offsets or bin edges",), bad))
            continue
        if max_abs[r] > 1000:
            out.append(
                Verdict(0.05, (f"magnitudes up to {max_abs[r]:.3g}: measurements, not an embedding",), bad)
            )
            continue
        if lag.shape[1]:
            k = lag_k[r]
            if abs(lag_top[r]) > _MAX_LAG_CORR:
                out.append(
                    Verdict(
                        0.05,
                        (
                            f"lag-{k + 1} autocorrelation {lag_top[r]:+.2f}: a signal, a series or "
                            "interleaved coordinates (embedding dimensions are independent)",
                        ),
                        bad,
                    )
                )
                continue
        if spread[r] > _MAX_LOG_IQR:
            out.append(
                Verdict(
                    0.05,
                    (f"magnitudes spread over {spread[r]:.1f} orders: random bytes read as floats",),
                    bad,
                )
            )
            continue
        out.append(_accepted(cand, d, positive[r], neg[r], distinct[r], zero[r], norms[r], bad, reasons))
    return out


def _accepted(
    cand: Candidate,
    d: int,
    positive: int,
    neg: float,
    distinct: float,
    zero: float,
    norm: float,
    bad: int,
    reasons: list[str],
) -> Verdict:
    """The verdict on a float row no rejection applied to: a score lowered by what is unusual."""
    score = 1.0
    if neg == 0 or positive == 0:
        score *= 0.2
        reasons.append("all values of one sign (pixels, probabilities, log-probabilities or scores)")
    else:
        share = _percent(positive, d)
        if min(positive / d, neg) < 0.15:
            score *= 0.5
            reasons.append(f"lopsided signs ({share} positive)")
        else:
            reasons.append(f"signed, centred values ({share} positive)")
    # 16-bit floats (bfloat16 has 8 significant bits) repeat values in long vectors; toy data and
    # bucketed values have far fewer than 128 distinct values.
    if distinct < min(0.5 * d, 128):
        score *= 0.4
        reasons.append(f"only {int(distinct)} distinct values in {d}")
    if zero > 0.5:
        score *= 0.5
        reasons.append(f"{zero:.0%} zeros (sparse)")
    if abs(norm - 1.0) < 0.01:
        reasons.append("unit norm")
    else:
        reasons.append(f"norm {norm:.3g}")
    if cand.precision == "low" and d < 64:
        score *= 0.6
        reasons.append("few significant digits")
    return Verdict(round(score, 3), tuple(reasons), bad)


@functools.lru_cache(maxsize=4096)
def _percent(count: int, d: int) -> str:
    """``count / d`` as a whole percentage, formatted once per (count, d): it is on every alert."""
    return f"{count / d:.0%}"


# Adjacent embedding dimensions are uncorrelated (|r| < 0.1 on every real fixture); sensor series,
# audio, pixel rows and (x, y) pairs are not. Below 32 values the sample correlation is too noisy.
_MIN_SERIES = 32
_MAX_LAG = 3
_MAX_LAG_CORR = 0.6
# Embedding magnitudes sit within about half an order of magnitude (interquartile range of log10|x|
# ~0.56 for Gaussian components); random bytes read as floats spread over dozens of orders.
_MAX_LOG_IQR = 2.0


def _autocorrelation(m: np.ndarray) -> np.ndarray:
    """Lag-1.._MAX_LAG autocorrelation of each row, shape (n, _MAX_LAG)."""
    c = m - m.mean(axis=1, keepdims=True)
    denom = (c * c).sum(axis=1)
    denom[denom == 0] = 1.0
    return np.stack([(c[:, :-k] * c[:, k:]).sum(axis=1) / denom for k in range(1, _MAX_LAG + 1)], axis=1)


def _log_iqr(absval: np.ndarray, zero_share: np.ndarray) -> np.ndarray:
    """Interquartile range of log10|x| over the non-zero values of each row.

    One sort per matrix; zeros sort first, so the quartiles of the non-zero part are picked by index
    (``nanpercentile`` costs several times more per row).
    """
    n, d = absval.shape
    ordered = np.sort(absval, axis=1)
    zeros = np.minimum(np.rint(zero_share * d).astype(np.int64), d - 1)
    span = np.maximum(d - zeros - 1, 0)
    q25 = np.take_along_axis(ordered, (zeros + span // 4)[:, None], axis=1)[:, 0]
    q75 = np.take_along_axis(ordered, (zeros + (3 * span) // 4)[:, None], axis=1)[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.log10(q75) - np.log10(q25)
    return np.nan_to_num(spread, nan=0.0, posinf=0.0, neginf=0.0)


def _judge_summary(cand: Candidate, integral: bool, max_abs: float, d: int, bad: int) -> Verdict:
    """A print that shows only a few edge values (numpy/torch summary): judged on what is visible."""
    if not cand.truncated:
        return Verdict(0.0, (f"only {d} values: too short for an embedding",), bad)
    if cand.declared_dim is not None and cand.declared_dim < MIN_DIM:
        return Verdict(0.05, (f"declared length {cand.declared_dim}: points or pairs, not vectors",), bad)
    if integral:
        return Verdict(0.05, ("integers only: an index or count array",), bad)
    if max_abs > 1000:
        return Verdict(0.05, (f"magnitudes up to {max_abs:.3g}: measurements, not an embedding",), bad)
    shown = f"{cand.declared_dim}-d" if cand.declared_dim else "a long"
    return Verdict(0.6, (f"summarised print of {shown} float array: only {d} edge values visible",), bad)


def _judge_quantised(
    cand: Candidate,
    monotonic: bool,
    distinct: int,
    non_negative: bool,
    smooth: float,
    d: int,
    bad: int,
    reasons: list[str],
) -> Verdict:
    """Integers under an embedding key: the key already said embedding; rule out ids, counts, fills."""
    if monotonic:
        return Verdict(0.05, ("sorted integers: ids or offsets, not a quantised vector",), bad)
    if distinct < 4:
        return Verdict(0.1, (f"only {distinct} distinct values in {d}: a fill or a mask",), bad)
    if cand.encoding == "int8" and non_negative:
        # int8 quantisation is symmetric around zero; a list of small non-negative ints is counts.
        return Verdict(0.1, ("int8 range but no negative values: counts, not a quantised vector",), bad)
    if cand.encoding in ("int8", "uint8") and smooth > _MAX_LAG_CORR:
        return Verdict(0.05, ("neighbouring values correlate: a pixel row or a series",), bad)
    reasons.append(f"{cand.encoding} quantised integers under an embedding key")
    return Verdict(0.8, tuple(reasons), bad)
