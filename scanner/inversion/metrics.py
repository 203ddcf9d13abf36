"""How close a reconstruction is to the text it came from: the figures ``bench/inversion.py`` reports
and the decoder's training run prints, computed one way (Vec2Text's definitions)."""

from __future__ import annotations

import re


def words(text: str) -> set[str]:
    """Lower-cased ``\\w+`` words, as a set: order and repeats do not count."""
    return set(re.findall(r"\w+", text.lower()))


def token_f1(pred: str, ref: str) -> float:
    """Set-based F1 of the two texts' ``words``; 1.0 for two empty texts."""
    p, r = words(pred), words(ref)
    if not p or not r:
        return float(p == r)
    tp = len(p & r)
    if tp == 0:
        return 0.0
    prec, rec = tp / len(p), tp / len(r)
    return 2 * prec * rec / (prec + rec)


def norm(text: str) -> str:
    """Lower-cased, white space collapsed: two texts are an exact match when these are equal."""
    return " ".join(text.lower().split())
