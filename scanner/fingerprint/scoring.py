"""Rank the models that could have produced a vector, with a calibrated-ish confidence.

Each (model, size) pair the vector could come from is a hypothesis: the model's native size, a size
its provider can cut to (Matryoshka ``dimensions``), or a plain prefix cut by someone downstream (less
likely a priori). Every hypothesis gets a log likelihood ratio against "some other model, or not an
embedding at all" from independent pieces of evidence:

* direction: cosine to the model's mean output direction and energy in its principal directions,
  compared with the held-out spread stored in the signature and with a null that is a bit wider than a
  random unit vector (outputs of *other* models are anisotropic too);
* density, at the sizes where a signature has it (the local MiniLM: native and prefixes >= 128): how the vector's energy
  sits against the model's whole second-moment matrix, in standard deviations of random unit vectors
  (see :mod:`.signature`). It replaces the direction features there: it holds them and, unlike the
  cosine to the mean, it still separates short queries and tickets from random vectors;
* norm: unit norm or not, against what the catalog says for that size;
* precision: fp16-exact values (Cohere, Mistral) against the catalog;
* a model name seen next to the vector (``hints``).

The posterior over {hypotheses, unknown} is the confidence. Models without a signature only compete
when a hint names them: the dimension alone never attributes (random unit vectors stay unknown).

The hot path is one matrix product per dimension group (numpy only); reasons are only built for the
guesses that are returned.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from scanner.model import Candidate, ModelGuess

from .catalog import Catalog, ModelSpec, load_catalog
from .signature import MIN_PREFIX, Signature, load_signature

UNKNOWN_PRIOR = 2.0  # prior weight of "another model / not an embedding" (catalog priors are ~1-3 each)
NULL_KAPPA = 1.3  # other models' outputs spread more along a fixed direction than random vectors do
HINT_LR = 50.0  # a model name in the same JSON object / span is strong, not conclusive, evidence
HINT_AGAINST = 0.2  # ... and evidence against the other candidates
LLR_CLIP = 20.0  # per feature: few-sample signatures must not produce absurd certainty
TEMPER = 0.7  # shrink the summed evidence: the features are not truly independent
MIN_CONFIDENCE = 0.2
# A guess needs evidence *for* it, not just a prior: a signature too weak to reject a random vector
# (few samples, low anisotropy) then yields "unknown" rather than a guess.
MIN_EVIDENCE = 2.0
MAX_GUESSES = 3
Evidence = tuple[dict[str, np.ndarray], int]
"""One vector's evidence: the batch's :meth:`Fingerprinter.evidence` dict and the vector's row in it."""
EVIDENCE_MEMO = "fingerprint.evidence"  # where the pipeline leaves it on a Finding, for the source pool
PRIOR_NATIVE, PRIOR_DOCUMENTED_CUT, PRIOR_PREFIX = 1.0, 0.5, 0.1
UNIT_TOL = 0.02
E_GAP_SHARE = 0.5


@dataclass(frozen=True)
class Hypothesis:
    spec: ModelSpec
    signature: Signature | None
    dim: int
    kind: str  # "native" | "documented-cut" | "prefix"
    log_prior: float
    c_mu: float = 0.0
    c_sd: float = 1.0
    e_mu: float = 0.0
    e_sd: float = 1.0
    k: int = 0
    density: bool = False

    @property
    def truncated_from(self) -> int | None:
        return None if self.kind == "native" else self.spec.dim

    def expects_unit(self) -> bool | None:
        if self.kind == "prefix":
            return None
        return self.spec.unit_norm_at(self.dim)


@dataclass
class _Group:
    """The hypotheses for one vector size, with their bases stacked for one matrix product."""

    dim: int
    hyps: list[Hypothesis]
    directions: np.ndarray  # (h, d) float32
    resid: np.ndarray  # (d, sum k) float32
    resid_slices: list[tuple[int, int]]
    c_mu: np.ndarray
    c_sd: np.ndarray
    e_mu: np.ndarray
    e_sd: np.ndarray
    e_null_mu: np.ndarray
    e_null_sd: np.ndarray
    log_prior: np.ndarray
    unit: np.ndarray  # (h,) 1 expects unit, 0 expects non-unit, -1 unknown
    norm_lo: np.ndarray
    norm_hi: np.ndarray
    fp16_model: np.ndarray  # (h,) bool: catalog says fp16 and the size is native
    quad_w: np.ndarray  # (d, sum K) float32: the density bases of the hypotheses that have one
    quad: list[tuple[int, int, int, np.ndarray]]  # (hypothesis, col start, col end, quad_stats)
    texts: list[tuple[str, str, str, str]]  # per hypothesis: reason parts that do not depend on the vector


class Fingerprinter:
    """Load once (:meth:`load`), then call :meth:`guess` / :meth:`guess_batch` per vector or batch."""

    def __init__(
        self, catalog: Catalog | None = None, signatures: Mapping[str, Signature] | None = None
    ) -> None:
        if catalog is None and signatures is None:  # the pipeline's ``Fingerprinter()``: packaged data
            base = default_fingerprinter()
            catalog, signatures = base.catalog, base.signatures
        if catalog is None or signatures is None:
            raise ValueError("give both a catalog and signatures, or neither")
        self.catalog = catalog
        self.signatures = dict(signatures)
        for model, sig in self.signatures.items():
            if catalog.get(model) is None:
                raise ValueError(f"signature for {model!r} has no catalog entry")
            if catalog.get(model).dim != sig.dim:  # type: ignore[union-attr]
                raise ValueError(
                    f"signature for {model!r} has {sig.dim} dims, catalog says {catalog.get(model).dim}"
                )  # type: ignore[union-attr]
        self._groups: dict[int, _Group] = {}

    @classmethod
    def load(cls, data_dir: str | Path | None = None, exclude: Sequence[str] = ()) -> Fingerprinter:
        """Catalog + every ``signatures/*.npz`` under ``data_dir`` (default: the packaged data)."""
        base = Path(data_dir) if data_dir is not None else Path(__file__).resolve().parent.parent / "data"
        catalog = load_catalog(base / "models.yaml")
        sigs: dict[str, Signature] = {}
        for path in sorted((base / "signatures").glob("*.npz")):
            sig = load_signature(path)
            if sig.model not in exclude:
                sigs[sig.model] = sig
        return cls(catalog, sigs)

    # ------------------------------------------------------------------ hypotheses per size
    def group(self, dim: int) -> _Group:
        g = self._groups.get(dim)
        if g is None:
            g = self._groups[dim] = self._build_group(dim)
        return g

    def _build_group(self, dim: int) -> _Group:
        hyps: list[Hypothesis] = []
        dirs: list[np.ndarray] = []
        resids: list[np.ndarray] = []
        if dim >= MIN_PREFIX:
            for model, sig in self.signatures.items():
                spec = self.catalog.get(model)
                assert spec is not None
                if sig.dim < dim:
                    continue
                kind = _kind(spec, dim)
                c_mu, c_sd, e_mu, e_sd = sig.stats_at(dim)
                direction, resid = sig.basis_at(dim)
                density = sig.density_at(dim) is not None
                hyps.append(
                    Hypothesis(
                        spec,
                        sig,
                        dim,
                        kind,
                        math.log(spec.prior * _KIND_PRIOR[kind]),
                        c_mu,
                        c_sd,
                        e_mu,
                        e_sd,
                        resid.shape[1],
                        density,
                    )
                )
                dirs.append(direction)
                resids.append(resid)
        h = len(hyps)
        slices, start = [], 0
        for r in resids:
            slices.append((start, start + r.shape[1]))
            start += r.shape[1]
        resid_all = np.hstack(resids) if resids and start else np.zeros((dim, 0))
        quad: list[tuple[int, int, int, np.ndarray]] = []
        quad_ws: list[np.ndarray] = []
        col = 0
        for j, hy in enumerate(hyps):
            if hy.density:
                w, stats = hy.signature.density_at(dim)  # type: ignore[union-attr,misc]
                stats = np.array(stats, dtype=np.float64)
                # As for the energy: unseen styles sit between the held-out texts and the null, so the
                # model's spread is at least E_GAP_SHARE of that gap (a noisy or odd output then counts
                # as weak evidence that pooling can add up, not as evidence against the model).
                stats[3] = max(stats[3], E_GAP_SHARE * max(stats[2], 0.0))
                quad.append((j, col, col + w.shape[1], stats))
                quad_ws.append(w)
                col += w.shape[1]
        k = np.array([hy.k for hy in hyps], dtype=np.float64)
        e_null_mu = k / dim
        e_null_sd = np.sqrt(np.maximum(2 * k * (dim - k), 1.0) / (dim * dim * (dim + 2.0))) * 2.0
        lo = np.array(
            [hy.spec.norm[0] if hy.spec.norm and hy.expects_unit() is False else 0.0 for hy in hyps]
        )
        hi = np.array(
            [hy.spec.norm[1] if hy.spec.norm and hy.expects_unit() is False else np.inf for hy in hyps]
        )
        return _Group(
            dim=dim,
            hyps=hyps,
            directions=np.array(dirs, dtype=np.float32).reshape(h, dim),
            resid=resid_all.astype(np.float32),
            resid_slices=slices,
            c_mu=np.array([hy.c_mu for hy in hyps]),
            c_sd=np.array([hy.c_sd for hy in hyps]),
            e_mu=np.array([hy.e_mu for hy in hyps]),
            # Real texts unlike the reference set (short queries, tickets) sit between the reference
            # texts and the null: the model's spread is at least E_GAP_SHARE of that gap.
            e_sd=np.maximum(
                [hy.e_sd for hy in hyps],
                E_GAP_SHARE * np.maximum(np.array([hy.e_mu for hy in hyps]) - e_null_mu, 0.0),
            ),
            e_null_mu=e_null_mu,
            e_null_sd=e_null_sd,
            log_prior=np.array([hy.log_prior for hy in hyps]),
            unit=np.array([{True: 1, False: 0, None: -1}[hy.expects_unit()] for hy in hyps]),
            norm_lo=lo / 2,
            norm_hi=hi * 2,
            fp16_model=np.array(
                [hy.spec.precision == "fp16" and hy.kind == "native" for hy in hyps], dtype=bool
            ),
            texts=[_static_texts(hy) for hy in hyps],
            quad_w=(np.hstack(quad_ws) if quad_ws else np.zeros((dim, 0))).astype(np.float32),
            quad=quad,
        )

    # ------------------------------------------------------------------ evidence
    def evidence(
        self, matrix: np.ndarray, precision: str | Sequence[str | None] | None = None
    ) -> dict[str, np.ndarray]:
        """Per-row features and per-(row, hypothesis) log likelihood ratios for one size group."""
        x = np.asarray(matrix, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        n, d = x.shape
        g = self.group(d)
        with np.errstate(over="ignore", invalid="ignore"):
            norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
            finite = np.isfinite(norms) & (norms > 0)
            xn = x / np.where(finite, norms, 1.0).astype(np.float32)[:, None]
            fp16 = _fp16_exact(x)
        if precision is not None:
            declared = np.array(
                [precision == "fp16"] * n if isinstance(precision, str) else [p == "fp16" for p in precision]
            )
            fp16 = fp16 | declared
        out: dict[str, np.ndarray] = {"norm": norms, "fp16": fp16, "finite": finite}
        h = len(g.hyps)
        if h == 0:
            out["llr"] = np.zeros((n, 0))
            return out
        c = (xn @ g.directions.T).astype(np.float64)
        sd_null = NULL_KAPPA / math.sqrt(d)
        llr_c = _lognorm(np.minimum(c, g.c_mu), g.c_mu, g.c_sd) - _lognorm(c, 0.0, sd_null)
        llr = np.clip(llr_c, -LLR_CLIP, LLR_CLIP)
        e = np.zeros((n, h))
        if g.resid.shape[1]:
            proj = (xn @ g.resid).astype(np.float64) ** 2
            for j, (a, b) in enumerate(g.resid_slices):
                if b > a:
                    e[:, j] = proj[:, a:b].sum(axis=1)
                    llr_e = _lognorm(np.minimum(e[:, j], g.e_mu[j]), g.e_mu[j], g.e_sd[j]) - _lognorm(
                        e[:, j], g.e_null_mu[j], g.e_null_sd[j]
                    )
                    # One-sided: concentration in the model's principal directions is evidence for it,
                    # but an input unlike the reference texts (one word, code) may lack it.
                    llr[:, j] += np.clip(llr_e, 0.0, LLR_CLIP)
        q = np.zeros((n, h))
        if g.quad:
            y = xn @ g.quad_w
            for j, a, b, (mu, sd, median, spread) in g.quad:
                q[:, j] = (-np.einsum("ij,ij->i", y[:, a:b], y[:, a:b], dtype=np.float64) - mu) / sd
                # One-sided like the energy: far above the model's median is no evidence against it.
                llr_q = _lognorm(np.minimum(q[:, j], median), median, spread) - _lognorm(
                    q[:, j], 0.0, NULL_KAPPA
                )
                llr[:, j] = np.clip(llr_q, -LLR_CLIP, LLR_CLIP)
        llr += _norm_llr(norms[:, None], g.unit[None, :], g.norm_lo[None, :], g.norm_hi[None, :])
        llr += _precision_llr(fp16[:, None], g.fp16_model[None, :])
        llr[~finite] = -LLR_CLIP
        out.update(c=c, e=e, q=q, llr=llr * TEMPER)
        return out

    # ------------------------------------------------------------------ answers
    def guess(
        self, values: np.ndarray, precision: str | None = None, hints: Mapping[str, Any] | None = None
    ) -> list[ModelGuess]:
        """Ranked guesses for one vector; an empty list means unknown."""
        return self.guess_batch(np.asarray(values, dtype=np.float32)[None, :], precision, [hints or {}])[0]

    def guess_batch(
        self,
        matrix: np.ndarray | Sequence[Candidate],
        precision: str | Sequence[str | None] | None = None,
        hints: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[list[ModelGuess]]:
        """Ranked guesses for each row of an (n, d) matrix of same-size vectors, one matrix product.

        Also accepts a sequence of :class:`~scanner.model.Candidate` of mixed sizes (the pipeline's
        call): see :meth:`guess_candidates`.
        """
        if not isinstance(matrix, np.ndarray) and (len(matrix) == 0 or isinstance(matrix[0], Candidate)):
            return self.guess_candidates(matrix)  # type: ignore[arg-type]
        x = np.asarray(matrix, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError("guess_batch expects an (n, d) matrix; group vectors by size first")
        return self._guess_matrix(x, precision, hints)[0]

    def _guess_matrix(
        self,
        x: np.ndarray,
        precision: str | Sequence[str | None] | None,
        hints: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None,
    ) -> tuple[list[list[ModelGuess]], dict[str, np.ndarray]]:
        """:meth:`guess_batch` on a float32 matrix, and the evidence the guesses came from."""
        n = x.shape[0]
        ev = self.evidence(x, precision)
        g = self.group(x.shape[1])
        logits = g.log_prior[None, :] + ev["llr"]
        row_hints = _row_hints(hints, n)
        log_unknown = math.log(UNKNOWN_PRIOR)
        if logits.shape[1]:
            top = logits.max(axis=1)
            best = np.maximum(top, log_unknown)
            denom = np.exp(logits - best[:, None]).sum(axis=1) + np.exp(log_unknown - best)
            post = np.exp(logits - best[:, None]) / denom[:, None]
        else:
            post = np.zeros((n, 0))
        results: list[list[ModelGuess]] = [[] for _ in range(n)]
        mask = (post >= MIN_CONFIDENCE) & (ev["llr"] >= MIN_EVIDENCE)
        hinted = np.array([h is not None for h in row_hints], dtype=bool)
        count = mask.sum(axis=1)
        best = np.where(mask, post, -1.0).argmax(axis=1) if mask.shape[1] else count
        # only rows with a guess (or a hint) pay for Python-level work
        for i in np.flatnonzero(mask.any(axis=1) | hinted):
            if row_hints[i]:
                results[i] = self._with_hint(g, ev, i, logits[i], row_hints[i])
                continue
            if count[i] == 1:
                j = int(best[i])
                results[i] = [self._make(g, ev, i, j, float(post[i, j]))]
                continue
            idx = np.flatnonzero(mask[i])
            idx = idx[np.argsort(-post[i, idx])][:MAX_GUESSES]
            results[i] = [self._make(g, ev, i, int(j), float(post[i, j])) for j in idx]
        return results, ev

    def guess_candidates(
        self, candidates: Sequence[Candidate], evidence: list[Evidence | None] | None = None
    ) -> list[list[ModelGuess]]:
        """Guesses for detector candidates of any sizes: grouped by size, one batch per group.

        A candidate whose print was summarised (``truncated``: numpy's ``[a, b, …, z]``) has no full
        vector to test, so only a model name in its context can name a model.

        ``evidence``, when given, is filled with each candidate's :data:`Evidence` (None for those
        without): the per-source pool reuses it rather than computing it a second time.
        """
        out: list[list[ModelGuess]] = [[] for _ in candidates]
        if evidence is not None:
            evidence[:] = [None] * len(candidates)
        groups: dict[int, list[int]] = {}
        for i, c in enumerate(candidates):
            values = c.values
            if c.truncated or values.ndim != 1 or values.shape[0] != c.dim:
                out[i] = self._hint_only(c)
            elif values.shape[0] >= MIN_PREFIX:
                groups.setdefault(int(values.shape[0]), []).append(i)
        for idx in groups.values():
            matrix = np.stack([candidates[i].values for i in idx]).astype(np.float32, copy=False)
            result, ev = self._guess_matrix(
                matrix, [candidates[i].precision for i in idx], [candidates[i].hints or None for i in idx]
            )
            for row, (i, guesses) in enumerate(zip(idx, result, strict=True)):
                out[i] = guesses
                if evidence is not None:
                    evidence[i] = (ev, row)
        return out

    def _hint_only(self, c: Candidate) -> list[ModelGuess]:
        name = _hint_name(c.hints) if c.hints else None
        spec = self.catalog.resolve(name)
        if spec is None or c.dim > spec.dim:
            return []
        kind = _kind(spec, c.dim)
        return [
            ModelGuess(
                model=spec.id,
                confidence=0.5,
                reasons=(
                    _dim_reason(spec, c.dim, kind),
                    f"model name {name!r} seen next to the vector",
                    "only part of the vector was printed: no statistical check possible",
                ),
                truncated_from=None if kind == "native" else spec.dim,
            )
        ]

    def _with_hint(
        self, g: _Group, ev: dict[str, np.ndarray], i: int, logits: np.ndarray, hints: Mapping[str, Any]
    ) -> list[ModelGuess]:
        name = _hint_name(hints)
        spec = self.catalog.resolve(name)
        logits = logits.copy()
        extra: list[tuple[ModelSpec, str, float]] = []
        notes: dict[str, str] = {}
        if spec is not None:
            hit = [j for j, hy in enumerate(g.hyps) if hy.spec.id == spec.id]
            for j in range(len(g.hyps)):
                logits[j] += math.log(HINT_LR) if j in hit else math.log(HINT_AGAINST)
            if not hit and g.dim <= spec.dim:
                kind = _kind(spec, g.dim)
                unit = spec.unit_norm_at(g.dim) if kind != "prefix" else None
                llr = (
                    math.log(HINT_LR)
                    + float(
                        _norm_llr(
                            ev["norm"][i],
                            {True: 1, False: 0, None: -1}[unit],
                            spec.norm[0] / 2 if spec.norm and unit is False else 0.0,
                            spec.norm[1] * 2 if spec.norm and unit is False else np.inf,
                        )
                    )
                    + float(_precision_llr(ev["fp16"][i], spec.precision == "fp16" and kind == "native"))
                )
                extra.append((spec, kind, math.log(spec.prior * _KIND_PRIOR[kind]) + llr * TEMPER))
            elif not hit:
                notes["mismatch"] = (
                    f"model name {name!r} seen next to the vector, but {spec.id} has {spec.dim} dims, not {g.dim}"
                )
        else:
            notes["unknown-name"] = f"model name {name!r} seen next to the vector is not in the catalog"
        all_logits = np.concatenate([logits, [e[2] for e in extra], [math.log(UNKNOWN_PRIOR)]])
        post = np.exp(all_logits - all_logits.max())
        post /= post.sum()
        evidence = np.concatenate(
            [
                all_logits[: len(g.hyps)] - g.log_prior,
                [e[2] - math.log(e[0].prior * _KIND_PRIOR[e[1]]) for e in extra],
            ]
        )
        order = [
            j for j in np.argsort(-post[:-1]) if post[j] >= MIN_CONFIDENCE and evidence[j] >= MIN_EVIDENCE
        ][:MAX_GUESSES]
        out: list[ModelGuess] = []
        for j in order:
            if j < len(g.hyps):
                guess = self._make(g, ev, i, int(j), float(post[j]))
            else:
                spec_x, kind, _ = extra[j - len(g.hyps)]
                guess = ModelGuess(
                    model=spec_x.id,
                    confidence=round(float(post[j]), 4),
                    reasons=(
                        _dim_reason(spec_x, g.dim, kind),
                        "no signature for this model: name and catalog only",
                    ),
                    truncated_from=None if kind == "native" else spec_x.dim,
                )
            if spec is not None and guess.model == spec.id:
                guess = replace(
                    guess, reasons=(*guess.reasons, f"model name {name!r} seen next to the vector")
                )
            out.append(guess)
        if out and notes:
            out[0] = replace(out[0], reasons=(*out[0].reasons, *notes.values()))
        return out

    def _make(self, g: _Group, ev: dict[str, np.ndarray], i: int, j: int, conf: float) -> ModelGuess:
        hy = g.hyps[j]
        static = g.texts[j]
        reasons = [static[0], f"cosine {ev['c'][i, j]:.2f}{static[1]}"]
        if hy.density:
            reasons.append(f"density check {ev['q'][i, j]:.1f}{static[2]}")
        elif hy.k:
            reasons.append(f"{ev['e'][i, j]:.2f}{static[2]}")
        norm = float(ev["norm"][i])
        reasons.append("norm 1 (unit)" if abs(norm - 1) < UNIT_TOL else f"norm {norm:.4g}")
        if ev["fp16"][i]:
            reasons.append(
                "values are fp16-exact" + (" as this provider emits" if hy.spec.precision == "fp16" else "")
            )
        reasons.append(static[3])
        return ModelGuess(hy.spec.id, round(conf, 4), tuple(reasons), hy.truncated_from)

    def dimension_matches(self, dim: int) -> list[str]:
        """Catalog models that can emit ``dim`` values (for 'unknown' explanations; not an attribution)."""
        return [s.id for s in self.catalog.by_dim(dim)]


_KIND_PRIOR = {"native": PRIOR_NATIVE, "documented-cut": PRIOR_DOCUMENTED_CUT, "prefix": PRIOR_PREFIX}


def _kind(spec: ModelSpec, dim: int) -> str:
    if dim == spec.dim:
        return "native"
    return "documented-cut" if spec.accepts_dim(dim) else "prefix"


def _dim_reason(spec: ModelSpec, dim: int, kind: str) -> str:
    if kind == "native":
        return f"{dim} dims = native size of {spec.id}"
    if kind == "documented-cut":
        return f"{dim} dims: a documented shortened output of the {spec.dim}-dim model (Matryoshka)"
    return (
        f"{dim} dims: a prefix of the {spec.dim}-dim output, cut downstream (e.g. TEI 'dimensions', slicing)"
    )


def _static_texts(hy: Hypothesis) -> tuple[str, str, str, str]:
    sig = hy.signature
    if hy.density and sig is not None:
        median = float(sig.density_at(hy.dim)[1][2])  # type: ignore[index]
        energy = (
            f" sd from random unit vectors, over the model's whole covariance (its held-out outputs: median"
            f" {median:.1f}; unrelated: 0±{NULL_KAPPA})"
        )
    else:
        energy = f" of its energy in the model's {hy.k} principal directions (its outputs: {hy.e_mu:.2f}; unrelated: {hy.k / hy.dim:.2f})"
    return (
        _dim_reason(hy.spec, hy.dim, hy.kind),
        f" to the model's mean direction (its outputs: {hy.c_mu:.2f}±{hy.c_sd:.2f}; unrelated vectors: 0±{1 / math.sqrt(hy.dim):.2f})",
        energy,
        f"signature from {sig.n} vector(s), held-out method: {sig.heldout}" if sig else "no signature",
    )


_FP16_MANTISSA = np.uint32(0x1FFF)


def _fp16_exact(x: np.ndarray) -> np.ndarray:
    """Rows whose every value is exactly a float16 (low 13 mantissa bits zero, within fp16 range).

    A bit test instead of a float16 round trip (several times faster). Rows are screened on their
    first 16 values, where almost every non-fp16 row already fails. fp16 subnormals (|v| < 6.1e-5)
    are treated as exact when their low bits are zero: close enough for a hint.
    """
    head = x[:, :16]
    ok = ~np.any(head.view(np.uint32) & _FP16_MANTISSA, axis=1) & np.all(np.abs(head) <= 65504, axis=1)
    rows = np.flatnonzero(ok)
    if rows.size:
        rest = x[rows]
        ok[rows] = ~np.any(rest.view(np.uint32) & _FP16_MANTISSA, axis=1) & np.all(
            np.abs(rest) <= 65504, axis=1
        )
    return ok


def _lognorm(x: np.ndarray | float, mu: np.ndarray | float, sd: np.ndarray | float) -> np.ndarray:
    z = (np.asarray(x) - mu) / sd
    return -0.5 * z * z - np.log(sd)


def _norm_llr(norm: np.ndarray, unit: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """log P(norm | model) / P(norm | other): unit-norm models rarely emit other norms, and back."""
    is_unit = np.abs(norm - 1.0) < UNIT_TOL
    in_range = (norm >= lo) & (norm <= hi)
    p_model = np.where(
        unit == 1,
        np.where(is_unit, 0.98, 0.02),
        np.where(
            unit == 0, np.where(is_unit, 0.05, np.where(in_range, 0.9, 0.02)), np.where(is_unit, 0.6, 0.4)
        ),
    )
    p_null = np.where(is_unit, 0.8, 0.2)
    return np.log(p_model / p_null)


def _precision_llr(fp16: np.ndarray, fp16_model: np.ndarray) -> np.ndarray:
    p_model = np.where(fp16_model, np.where(fp16, 0.9, 0.1), np.where(fp16, 0.02, 0.98))
    p_null = np.where(fp16, 0.1, 0.9)
    return np.log(p_model / p_null)


def _hint_name(hints: Mapping[str, Any]) -> str | None:
    for key in (
        "model",
        "embedding.model_name",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "model_name",
    ):
        value = hints.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _row_hints(
    hints: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None, n: int
) -> list[Mapping[str, Any] | None]:
    if hints is None:
        return [None] * n
    if isinstance(hints, Mapping):
        return [hints if _hint_name(hints) else None] * n
    rows = list(hints)
    if len(rows) != n:
        raise ValueError(f"{len(rows)} hints for {n} vectors")
    return [h if h and _hint_name(h) else None for h in rows]


def confirm(
    guesses: Sequence[ModelGuess], model_id: str, cosine: float, threshold: float = 0.9
) -> list[ModelGuess]:
    """Mark ``model_id`` confirmed when inverting under it and re-embedding reached ``cosine`` ≥ threshold.

    A round trip that high under a local model is near-proof of the model (an unrelated model's
    inversion does not re-embed close to the original), so the guess moves to the front with
    confidence ≥ 0.99. Below the threshold the list is returned unchanged.
    """
    guesses = list(guesses)
    if not (cosine >= threshold):
        return guesses
    reason = f"round trip: text inverted under {model_id} re-embeds at cosine {cosine:.3f} (≥ {threshold})"
    for i, g in enumerate(guesses):
        if g.model == model_id:
            confirmed = replace(
                g, confidence=max(g.confidence, 0.99), confirmed=True, reasons=(*g.reasons, reason)
            )
            return [confirmed, *guesses[:i], *guesses[i + 1 :]]
    return [ModelGuess(model=model_id, confidence=0.99, reasons=(reason,), confirmed=True), *guesses]


@functools.cache
def default_fingerprinter() -> Fingerprinter:
    """The packaged catalog and signatures, loaded once per process."""
    return Fingerprinter.load()
