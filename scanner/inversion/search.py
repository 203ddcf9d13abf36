"""White-box inversion: find text whose embedding matches a leaked vector, using only the model.

Why this shape (inversion.md §3): mean pooling leaks a bag of tokens, so a cheap linear estimate
(pooled sum + one token's isolated output) ranks all 30k vocabulary edits at once; the encoder then
re-embeds the few best candidates exactly, in batches, and only exact cosines decide. Two phases:

1. *Build*: a beam grows texts one token at a time, choosing the tokens the estimate says move the
   pooled sum toward the target.
2. *Repair*: a beam over substitute / delete / insert / move / span-move edits, with every candidate
   re-embedded. Moves matter because position embeddings make word order visible to the encoder,
   just faintly; the cosine gap between right and wrong order is small but real.

Every candidate is canonicalised (decode → re-tokenise) before scoring, so the reported cosine is
the cosine of the text we print, not of an id sequence no tokeniser would produce.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scanner.wordlists import FUNCTION_WORDS, PUNCT

from .models import Encoder

# The function words and punctuation, probed exactly (appended once) to find the ones the text
# contains. This list never had '"', and it adds "s" and "t" (the pieces after an apostrophe in
# "it's", "don't"): the token search's published figures were measured so.
COMMON_WORDS = [*FUNCTION_WORDS, *(p for p in PUNCT if p != '"'), "s", "t"]


@dataclass(slots=True)
class SearchConfig:
    """Knobs of the search. ``budget`` counts candidate texts re-embedded, so runs are reproducible."""

    budget: int = 2500
    stop_cos: float = 0.999
    max_seconds: float | None = None
    build_beam: int = 3
    build_branch: int = 8
    repair_beam: int = 3
    sub_per_pos: int = 3
    insert_tokens: int = 4
    move_sample: int = 60
    max_len: int = 40
    seed: int = 0


@dataclass(slots=True)
class SearchOutcome:
    ids: tuple[int, ...]
    cosine: float
    steps: int
    evaluations: int
    trace: list[float] = field(default_factory=list)


class WhiteBoxSearch:
    """One model's search state: the token table and a mask of tokens worth proposing."""

    def __init__(self, encoder: Encoder, config: SearchConfig | None = None) -> None:
        self.enc = encoder
        self.cfg = config or SearchConfig()
        torch = encoder.torch
        self.torch = torch
        table = encoder.token_table()
        self.H = torch.from_numpy(table).to(encoder.device)
        self.H_sq = (self.H * self.H).sum(dim=1)
        tokens = encoder.tokenizer.convert_ids_to_tokens(list(range(encoder.vocab_size)))
        special = set(encoder.tokenizer.all_special_ids)
        allowed = np.array(
            [i not in special and not (t.startswith("[") and t.endswith("]")) for i, t in enumerate(tokens)]
        )
        self.blocked = torch.from_numpy(~allowed).to(encoder.device)
        self.E = encoder.input_embeddings
        vocab = encoder.tokenizer.get_vocab()
        self.common = [vocab[w] for w in COMMON_WORDS if w in vocab]

    # -- exact scoring ------------------------------------------------------------------------
    def _canon(self, seqs: Sequence[Sequence[int]]) -> list[tuple[int, ...]]:
        texts = self.enc.tokenizer.batch_decode([list(s) for s in seqs], clean_up_tokenization_spaces=True)
        ids = self.enc.tokenizer(texts, add_special_tokens=False)["input_ids"]
        return [tuple(x[: self.cfg.max_len]) for x in ids]

    def _evaluate(self, seqs: Sequence[Sequence[int]], target: Any) -> list[tuple[int, ...]]:
        """Canonicalise, dedupe, re-embed the new ones; returns the canonical forms scored."""
        canon = self._canon(seqs) if seqs else []
        fresh = list(dict.fromkeys(c for c in canon if c not in self.cache))
        if fresh:
            emb, sums = self.enc.forward_ids(fresh)
            cos = (emb @ target).float().cpu().numpy()
            for c, score, s in zip(fresh, cos, sums, strict=True):
                self.cache[c] = (float(score), s)
            self.evals += len(fresh)
        return list(dict.fromkeys(canon))

    def _out_of_budget(self) -> bool:
        if self.evals >= self.cfg.budget:
            return True
        return self.cfg.max_seconds is not None and time.monotonic() - self.t0 > self.cfg.max_seconds

    def _best(self) -> tuple[tuple[int, ...], float]:
        ids = max(self.cache, key=lambda k: self.cache[k][0])
        return ids, self.cache[ids][0]

    # -- estimates ----------------------------------------------------------------------------
    def _est_add(self, base: Any, target: Any) -> Any:
        """Estimated cosine after adding each vocabulary token to a pooled sum ``base`` (rows)."""
        dots = base @ target  # (r,)
        cross = base @ self.H.T  # (r, V)
        num = dots[:, None] + (self.H @ target)[None, :]
        den = ((base * base).sum(dim=1)[:, None] + 2 * cross + self.H_sq[None, :]).clamp(min=1e-9).sqrt()
        est = num / den
        return est.masked_fill(self.blocked[None, :], -2.0)

    def _grad(self, seqs: Sequence[Sequence[int]], target: Any) -> Any:
        """HotFlip: d cos / d input-embedding at every position, for a batch of sequences."""
        self.evals += len(seqs)
        return self.enc.cos_grad(seqs, target)

    def _grad_subs(self, s: tuple[int, ...], target: Any, k: int) -> list[tuple[int, int]]:
        """Best (position, token) substitutions by first-order gain."""
        torch = self.torch
        g = self._grad([s], target)[0, 1 : 1 + len(s)]  # (n, h)
        cur = torch.tensor(s, device=g.device)
        gain = g @ self.E.T - (g * self.E[cur]).sum(dim=1, keepdim=True)
        gain = gain.masked_fill(self.blocked[None, :], -1e9)
        gain[torch.arange(len(s), device=g.device), cur] = -1e9
        flat = gain.flatten().topk(min(k, gain.numel())).indices.cpu().tolist()
        return [divmod(f, gain.shape[1]) for f in flat]

    def _grad_inserts(self, s: tuple[int, ...], target: Any, k: int) -> list[tuple[int, int]]:
        """Best (position, token) insertions: a [MASK] placeholder at each slot, then HotFlip."""
        mask_id = self.enc.tokenizer.mask_token_id
        seqs = [s[:i] + (mask_id,) + s[i:] for i in range(len(s) + 1)]
        g = self._grad(seqs, target)
        slots = self.torch.stack([g[i, 1 + i] for i in range(len(seqs))])  # (n+1, h)
        gain = slots @ self.E.T - (slots @ self.E[mask_id])[:, None]
        gain = gain.masked_fill(self.blocked[None, :], -1e9)
        flat = gain.flatten().topk(min(k, gain.numel())).indices.cpu().tolist()
        return [divmod(f, gain.shape[1]) for f in flat]

    # -- phases -------------------------------------------------------------------------------
    def run(self, target_np: np.ndarray, seed_texts: Sequence[Sequence[int]] = ()) -> SearchOutcome:
        torch = self.torch
        cfg = self.cfg
        target = torch.from_numpy(np.asarray(target_np, dtype=np.float32)).to(self.enc.device)
        target = target / target.norm()
        self.cache: dict[tuple[int, ...], tuple[float, Any]] = {}
        self.evals = 0
        self.t0 = time.monotonic()
        rng = random.Random(cfg.seed)
        steps = 0
        trace: list[float] = []

        beam = self._evaluate([(), *seed_texts], target)
        beam = sorted(beam, key=lambda k: -self.cache[k][0])[: cfg.build_beam]
        # Phase 1: grow.
        stale = 0
        while not self._out_of_budget():
            steps += 1
            sums = torch.stack([self.cache[s][1] for s in beam])
            est = self._est_add(sums, target)
            top = est.topk(cfg.build_branch, dim=1).indices.cpu().tolist()
            children = [
                s + (v,) for s, row in zip(beam, top, strict=True) for v in row if len(s) < cfg.max_len
            ]
            if not children:
                break
            best_before = self._best()[1]
            scored = self._evaluate(children, target)
            pool = sorted(set(scored) | set(beam), key=lambda k: -self.cache[k][0])
            beam = pool[: cfg.build_beam]
            best_now = self._best()[1]
            trace.append(best_now)
            if best_now >= cfg.stop_cos:
                break
            stale = stale + 1 if best_now <= best_before + 1e-4 else 0
            if stale >= 2:
                break

        # Phase 2: repair.
        beam = sorted(self.cache, key=lambda k: -self.cache[k][0])[: cfg.repair_beam]
        stale = 0
        while not self._out_of_budget() and self._best()[1] < cfg.stop_cos:
            steps += 1
            best_before = self._best()[1]
            cands: list[tuple[int, ...]] = []
            probe_tokens = self._probe(beam[0], target)
            for s in beam:
                cands.extend(self._neighbours(s, target, rng, probe_tokens))
            remaining = cfg.budget - self.evals
            if remaining <= 0:
                break
            scored = self._evaluate(cands[: max(remaining, 1)], target)
            pool = sorted(set(scored) | set(beam), key=lambda k: -self.cache[k][0])
            beam = pool[: cfg.repair_beam]
            best_now = self._best()[1]
            trace.append(best_now)
            stale = stale + 1 if best_now <= best_before + 1e-5 else 0
            if stale >= 3:
                break
        ids, cos = self._best()
        return SearchOutcome(ids, cos, steps, self.evals, trace)

    def _probe(self, s: tuple[int, ...], target: Any) -> list[int]:
        """Which tokens, appended to ``s``, raise the exact cosine most: the insert/substitute pool."""
        est = self._est_add(self.cache[s][1][None, :], target)[0]
        tokens = list(dict.fromkeys([*self.common, *est.topk(24).indices.cpu().tolist()]))
        probes = [s + (v,) for v in tokens]
        canon = self._evaluate(probes, target)
        scored = sorted(
            ((self.cache[c][0], v) for c, v in zip(canon, tokens, strict=False) if c in self.cache),
            reverse=True,
        )
        return [v for _, v in scored[: self.cfg.insert_tokens]]

    def _neighbours(
        self, s: tuple[int, ...], target: Any, rng: random.Random, probe_tokens: Sequence[int]
    ) -> list[tuple[int, ...]]:
        torch = self.torch
        cfg = self.cfg
        n = len(s)
        out: list[tuple[int, ...]] = []
        total = self.cache[s][1]
        if n:
            per_tok = self.enc.token_outputs(s)  # contextual outputs: what removing token i subtracts
            self.evals += 1
            # Substitutions ranked by the estimate for every (position, token) pair.
            est = self._est_add(total[None, :] - per_tok, target)  # (n, V)
            cur = torch.tensor(s, device=est.device)
            est[torch.arange(n, device=est.device), cur] = -2.0
            k = min(cfg.sub_per_pos * n, est.numel())
            flat = est.flatten().topk(k).indices.cpu().tolist()
            V = est.shape[1]
            for f in flat:
                i, v = divmod(f, V)
                out.append(s[:i] + (v,) + s[i + 1 :])
            for i, v in self._grad_subs(s, target, cfg.sub_per_pos * n):
                out.append(s[:i] + (v,) + s[i + 1 :])
            # Deletions.
            out.extend(s[:i] + s[i + 1 :] for i in range(n))
        # Insertions of the best tokens to add, at every position.
        est_add = self._est_add(total[None, :], target)[0]
        for v in est_add.topk(cfg.insert_tokens).indices.cpu().tolist():
            out.extend(s[:i] + (v,) + s[i:] for i in range(n + 1))
        for v in probe_tokens:
            out.extend(s[:i] + (v,) + s[i:] for i in range(n + 1))
            out.extend(s[:i] + (v,) + s[i + 1 :] for i in range(n))
        # Moves: one token, or a span of 2–4, to another place.
        moves = []
        for i in range(n):
            for j in range(n):
                if i != j:
                    moves.append((i, 1, j))
        for length in (2, 3, 4):
            for i in range(n - length + 1):
                for j in range(n - length + 1):
                    if i != j:
                        moves.append((i, length, j))
        if len(moves) > cfg.move_sample:
            adjacent = [m for m in moves if m[1] == 1 and abs(m[0] - m[2]) == 1]
            rest = [m for m in moves if not (m[1] == 1 and abs(m[0] - m[2]) == 1)]
            moves = adjacent + rng.sample(rest, max(0, cfg.move_sample - len(adjacent)))
        for i, length, j in moves:
            span = s[i : i + length]
            rest_seq = s[:i] + s[i + length :]
            out.append(rest_seq[:j] + span + rest_seq[j:])
        return out
