"""Known-text matching: is a leaked vector the embedding of one of the user's sensitive strings,
or of a text that contains one?

Equality is cheap and certain: re-embed each string; cosine ≈ 1.0 means the same text (the same
tokens, in order) went through the same model. Containment is judged two ways, because a string that
is a small part of a long text moves the mean-pooled vector only partly toward its own embedding:
the cosine between the vector and the string's embedding, and, when an inversion is at hand, how many
of the string's tokens the reconstruction recovered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

EQUAL_COS = 0.995
CONTAINS_COS = 0.55
CONTAINS_COS_WITH_TOKENS = 0.30
CONTAINS_TOKEN_RECALL = 0.8


@dataclass(frozen=True, slots=True)
class KnownMatch:
    """How one sensitive string relates to a leaked vector."""

    index: int
    relation: str  # "equal" | "contains" | "none"
    cosine: float
    token_recall: float | None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "index": self.index,
            "relation": self.relation,
            "cosine": round(self.cosine, 6),
        }
        if self.token_recall is not None:
            out["token_recall"] = round(self.token_recall, 3)
        return out


class KnownTextMatcher:
    """Embeds the sensitive strings once; then scores any number of vectors against them."""

    def __init__(self, encoder: object, strings: Sequence[str]) -> None:
        self.encoder = encoder
        self.strings = list(strings)
        self.embeddings = encoder.embed_texts(self.strings) if self.strings else np.zeros((0, encoder.dim))  # type: ignore[attr-defined]
        self.token_sets = [set(encoder.tokenize(s)) for s in self.strings]  # type: ignore[attr-defined]

    def match(self, vector: np.ndarray, inverted_text: str | None = None) -> list[KnownMatch]:
        """Every string's relation to ``vector``, best first. ``inverted_text`` sharpens containment."""
        v = np.asarray(vector, dtype=np.float32)
        v = v / max(float(np.linalg.norm(v)), 1e-12)
        cos = self.embeddings @ v if len(self.strings) else np.zeros(0)
        bag = set(self.encoder.tokenize(inverted_text)) if inverted_text else None  # type: ignore[attr-defined]
        out = []
        for i, score in enumerate(cos.tolist()):
            recall = None
            if bag is not None and self.token_sets[i]:
                recall = len(self.token_sets[i] & bag) / len(self.token_sets[i])
            if score >= EQUAL_COS:
                relation = "equal"
            elif score >= CONTAINS_COS or (
                recall is not None and recall >= CONTAINS_TOKEN_RECALL and score >= CONTAINS_COS_WITH_TOKENS
            ):
                relation = "contains"
            else:
                relation = "none"
            out.append(KnownMatch(i, relation, float(score), recall))
        order = {"equal": 0, "contains": 1, "none": 2}
        return sorted(out, key=lambda m: (order[m.relation], -m.cosine))
