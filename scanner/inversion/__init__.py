"""Inversion: turn a leaked embedding back into text, with the model vecleak can run locally.

Public API (the scan pipeline calls this; torch is imported only when an Inverter is built)::

    from scanner import inversion
    if inversion.available():
        result = inversion.Inverter("sentence-transformers/all-MiniLM-L6-v2", "cpu", budget=2500).invert(vec)
        result.text, result.cosine, result.pii

Bad vectors raise :class:`InversionInputError` with a message fit for a per-vector ``error`` line.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scanner.pii import PiiItem, find_pii, redact

from .models import DEFAULT_MODEL

log = logging.getLogger(__name__)

METHODS = ("words", "tokens")

__all__ = [
    "DEFAULT_MODEL",
    "METHODS",
    "InversionInputError",
    "InversionResult",
    "Inverter",
    "available",
    "detokenize",
]


def available() -> bool:
    """True when torch and transformers are importable (checked without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))


class InversionInputError(ValueError):
    """A vector that cannot be inverted: wrong dimension, zero, NaN/inf, or cut off."""


@dataclass(slots=True)
class InversionResult:
    """What one leaked vector reads as. ``text`` is clear text; use :meth:`to_dict` for output."""

    text: str
    cosine: float
    steps: int
    evaluations: int
    seconds: float
    model: str
    pii: list[PiiItem] = field(default_factory=list)

    def redacted_text(self) -> str:
        return redact(self.text, self.pii)

    def to_dict(self, reveal: bool = False) -> dict[str, Any]:
        return {
            "text": self.text if reveal else self.redacted_text(),
            "cosine": round(self.cosine, 6),
            "steps": self.steps,
            "evaluations": self.evaluations,
            "seconds": round(self.seconds, 3),
            "model": self.model,
            "pii": [it.to_dict(reveal) for it in self.pii],
        }


def _pick_device(device: str | None) -> str:
    if device and device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


_JOIN_BOTH = {"@", "/", "_"}
_NO_SPACE_BEFORE = {",", ".", "!", "?", ";", ":", ")", "]", "}", "%", "'"}
_NO_SPACE_AFTER = {"(", "[", "{", "$", "#", "'"}


def detokenize(tokens: list[str]) -> str:
    """Readable text from wordpieces that re-tokenises to the same pieces.

    BERT splits punctuation wherever spaces are, so only word–word boundaries need a space; around
    punctuation we choose what reads naturally: ``mike.green@gmail.com``, ``555-867-5309``, ``3.5``.
    """
    out = ""
    prev = ""
    for i, tok in enumerate(tokens):
        if tok.startswith("##"):
            out += tok[2:]
            prev = tok
            continue
        if not out:
            out = tok
        elif not tok.isalnum() or not prev[-1:].isalnum():
            # punctuation boundary: spacing is free for the tokeniser, pick the natural form
            glue = (
                tok in _JOIN_BOTH
                or prev in _JOIN_BOTH
                or tok in _NO_SPACE_BEFORE
                or prev in _NO_SPACE_AFTER
                or (tok == "-" and prev[-1:].isdigit())
                or (prev == "-" and tok[:1].isdigit() and out[-2:-1].isdigit())
                or (prev == "." and (_in_email_or_number(out, tok) or "@" in tokens[i + 1 : i + 3]))
            )
            out += tok if glue else " " + tok
        else:
            out += " " + tok
        prev = tok
    return out


def _in_email_or_number(out: str, tok: str) -> bool:
    last_word = out.rsplit(" ", 1)[-1]
    return (
        "@" in last_word
        or (last_word[:-1].replace(".", "").isdigit() and tok.isdigit())
        or (tok in {"com", "org", "net", "io", "edu", "gov", "de", "uk", "co"})
    )


class Inverter:
    """White-box inverter for one local model: search for text whose embedding matches a vector."""

    def __init__(
        self,
        model_id: str = DEFAULT_MODEL,
        device: str | None = "auto",
        budget: int | None = None,
        threads: int | None = 2,
        stop_cos: float = 0.999,
        max_seconds: float | None = None,
        method: str = "words",
        first_guess: bool = False,
    ) -> None:
        """``method``: ``words`` (whole-word search, the default) or ``tokens`` (wordpiece search,
        kept as the benchmark baseline). ``budget`` counts exactly re-embedded candidates.
        ``first_guess``: where the word search is stuck, repair the trained decoder's guess too
        (``decoder``; all-MiniLM-L6-v2 only). Opt-in: it did not clearly help (README)."""
        from .models import load_encoder

        if method not in METHODS:
            raise ValueError(f"unknown inversion method {method!r} (known: {', '.join(METHODS)})")
        self.device = _pick_device(device)
        self.encoder = load_encoder(
            model_id, device=self.device, threads=threads if self.device == "cpu" else None
        )
        self.model_id = self.encoder.spec.model_id
        self.method = method
        self.search: Any
        self.decoder: Any = None
        if method == "tokens":
            from .search import SearchConfig, WhiteBoxSearch

            config = SearchConfig(stop_cos=stop_cos, max_seconds=max_seconds)
            if budget is not None:
                config.budget = int(budget)
            self.search = WhiteBoxSearch(self.encoder, config)
        else:
            from .words import WordSearch, WordSearchConfig

            wconfig = WordSearchConfig(max_seconds=max_seconds, stop_cos=max(stop_cos, 0.9995))
            if budget is not None:
                wconfig.budget = int(budget)
            self.search = WordSearch(self.encoder, wconfig)
            if first_guess and wconfig.seed_beams:
                from . import decoder

                # Trained on one encoder's vectors: another model's would read as noise.
                trained = decoder.trained_for()
                if trained == self.model_id:
                    self.decoder = decoder.load(self.device)
                elif trained is None and not decoder.weights_path().is_file():
                    log.warning("trained first guess off: %s", decoder.unavailable_reason())

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def check(self, vector: Any) -> np.ndarray:
        """Validate a leaked vector; raise :class:`InversionInputError` with a per-vector message."""
        try:
            arr = np.asarray(vector, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InversionInputError(f"not a numeric vector: {exc}") from None
        if arr.ndim != 1:
            raise InversionInputError(f"expected a 1-d vector, got shape {arr.shape}")
        if arr.shape[0] != self.dim:
            hint = " (truncated print?)" if arr.shape[0] < self.dim else ""
            raise InversionInputError(
                f"dimension {arr.shape[0]} does not match model {self.model_id} (dim {self.dim}){hint}"
            )
        if not np.all(np.isfinite(arr)):
            raise InversionInputError("vector contains NaN or infinite values")
        norm = float(np.linalg.norm(arr))
        if norm == 0.0 or not math.isfinite(norm):
            raise InversionInputError("zero vector: nothing to invert")
        return (arr / norm).astype(np.float32)

    def text_of(self, ids: tuple[int, ...]) -> str:
        return detokenize(self.encoder.tokenizer.convert_ids_to_tokens(list(ids)))

    def invert(self, vector: Any) -> InversionResult:
        target = self.check(vector)
        t0 = time.monotonic()
        if self.decoder is not None:
            decoder, beams = self.decoder, self.search.cfg.seed_beams
            outcome = self.search.run(target, lambda: decoder.hypotheses(target, beams))
        else:
            outcome = self.search.run(target)
        text = self.text_of(outcome.ids)
        # Report the cosine of the printed text, re-embedded from scratch: the number users can check.
        cosine = float(self.encoder.embed_texts([text])[0] @ target)
        return InversionResult(
            text=text,
            cosine=cosine,
            steps=outcome.steps,
            evaluations=outcome.evaluations,
            seconds=time.monotonic() - t0,
            model=self.model_id,
            pii=find_pii(text),
        )


class InversionEnricher:
    """Inverts a finding's vector when its top model guess is one vecleak can run locally.

    This is the hook the ``watch`` daemon's inversion worker and ``scan --invert`` call, off the hot
    path. It returns the masked text for alerts, keeps the clear text under ``text_clear`` (never
    rendered by :func:`scanner.ecs.alert_to_ecs`), and confirms the model when the round trip is close.
    With ``jobs`` above 1 each model gets that many worker processes (``pool``), and :meth:`enrich`
    may be called from as many threads at once.
    """

    def __init__(
        self,
        device: str | None = "auto",
        budget: int | None = None,
        first_guess: bool = False,
        jobs: int = 1,
        threads: int = 2,
    ) -> None:
        self.device = device
        self.budget = budget
        self.first_guess = first_guess
        self.jobs = jobs
        self.threads = threads
        self._pools: dict[str, Any] = {}
        self._lock = threading.Lock()

    def enrich(self, finding: Any) -> dict[str, Any] | None:
        from scanner.fingerprint import confirm

        from .models import resolve

        top = finding.model
        if finding.candidate.truncated or top is None:
            return None
        try:
            resolve(top.model)
        except (KeyError, ValueError, FileNotFoundError):
            return None  # not a model we can run here
        done = self._pool(top.model).submit(np.asarray(finding.candidate.values)).result()
        if done.result is None:
            return None  # a vector that cannot be inverted (InversionInputError)
        result = done.result
        finding.fingerprint = confirm(finding.fingerprint, top.model, result.cosine)
        out = result.to_dict(reveal=False)
        out["text_clear"] = result.text
        out["confirmed"] = bool(finding.fingerprint and finding.fingerprint[0].confirmed)
        return out

    def close(self) -> None:
        """Stop every model's workers (nothing to stop with ``jobs`` 1)."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()

    def _pool(self, model: str) -> Any:
        from functools import partial

        from .pool import InversionPool

        with self._lock:  # one pool per model, however many threads ask for it first
            pool = self._pools.get(model)
            if pool is None:
                factory = partial(
                    Inverter,
                    model,
                    self.device,
                    self.budget,
                    threads=max(1, self.threads // self.jobs),
                    first_guess=self.first_guess,
                )
                pool = self._pools[model] = InversionPool(factory, self.jobs)
        return pool


def make_enricher(budget: int | None = None, first_guess: bool = False) -> InversionEnricher | None:
    """The daemon's default enricher: None when torch/transformers are not installed."""
    return InversionEnricher(budget=budget, first_guess=first_guess) if available() else None
