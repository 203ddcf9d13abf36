"""Word-level white-box inversion: search over whole words, not wordpieces.

Why (BENCHMARKS.md, token search): the token search recovered content words but lost function words,
word order and multi-piece units (``mike.green@gmail.com`` is 7 pieces, ``5309`` is two), because
every edit moved one wordpiece and the encoder scored half-built words. Here every unit is a whole
word from an English frequency list (``wordfreq``, when installed) or the model's own whole-word
pieces, plus given names and surnames, punctuation and, once digits or ``@`` show up, PII-shaped
units (``first.last@domain``, digit groups) proposed as one edit.

BERT's tokeniser splits on whitespace and punctuation first, so the ids of a word sequence are the
concatenation of each word's ids: candidates need no decode/re-tokenise round trip, and the printed
text re-tokenises to exactly what was scored.

Search, every candidate exactly re-embedded in batches (only exact cosines decide):

1. *Build*: a beam grows the text a word at a time, appending the words a linear estimate ranks
   best (pooled sum + the word's isolated token outputs, all ~60k units at once), plus the best few
   digit groups, which the general ranking drowns.
2. *Repair*: a cascade of word-level edit classes, cheapest first — delete, short moves/swaps,
   estimate-ranked substitutions (digit groups ranked on their own), frequent words probed
   exactly and inserted where they fit, email units, long moves, and a full sweep of frequent
   words into every slot when stuck. The first class that improves wins and the cascade restarts.
   Position embeddings make order visible (a random shuffle of a 10-word text drops the cosine to
   about 0.93, one adjacent swap to about 0.98), so the exact cosine can fix order.
3. *Email units*: when the text has an email cue, ``first.last@domain`` / ``name@domain`` built
   from the recovered given names and surnames and common domains are proposed as one unit.
"""

from __future__ import annotations

import itertools
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .models import Encoder

PUNCT = [",", ".", "?", "!", "'", ":", ";", "-", "@", "/", "(", ")", "#", "$", "%", "&", "+", "=", '"']
EMAIL_DOMAINS = [
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "icloud.com",
    "aol.com",
    "company.com",
    "example.com",
    "proton.me",
    "mail.com",
]
_WORD_RE = re.compile(r"^[a-z]+(?:'[a-z]+)?$|^[0-9]{1,4}$")


@dataclass(slots=True)
class WordSearchConfig:
    """Knobs. ``budget`` counts exactly re-embedded candidates, so runs are reproducible."""

    budget: int = 2500
    stop_cos: float = 0.9995
    max_seconds: float | None = None
    vocab_size: int = 40000
    build_beam: int = 2
    est_top: int = 8
    func_words: int = 40
    func_slots: int = 3
    sub_per_pos: int = 4
    digit_subs: int = 12
    digit_probe: int = 32
    build_min_gain: float = 1e-3
    build_func: int = 0
    build_digits: int = 3
    repair_beam: int = 1
    move_sample: int = 80
    sweep_max: int = 800
    max_words: int = 40
    prior_weight: float = 0.002
    seed: int = 0


@dataclass(slots=True)
class WordOutcome:
    ids: tuple[int, ...]
    cosine: float
    steps: int
    evaluations: int
    words: tuple[str, ...] = ()
    trace: list[float] = field(default_factory=list)


def _vocabulary(enc: Encoder, size: int) -> tuple[list[str], list[float]]:
    """Whole words to search over, with a log-frequency prior (zipf scale, 0 when unknown)."""
    words: dict[str, float] = {}
    try:
        import wordfreq

        for w in wordfreq.top_n_list("en", size):
            if _WORD_RE.match(w):
                words[w] = wordfreq.zipf_frequency(w, "en")
    except ImportError:  # the ``invert`` extra ships wordfreq; without it the model's pieces still work
        pass
    from scanner.pii import FIRST_NAMES, SURNAMES

    for w in sorted(FIRST_NAMES | SURNAMES):
        words.setdefault(w, 2.0)
    for tok in enc.tokenizer.get_vocab():
        if _WORD_RE.match(tok):
            words.setdefault(tok, 1.0)
    # Digit groups as whole units: phone, card and SSN parts are 2–4 digits, often several pieces.
    for n in range(10000):
        words.setdefault(str(n), 1.0)
        if n < 1000:
            words.setdefault(f"{n:03d}", 1.0)
            words.setdefault(f"{n:04d}", 1.0)
        if n < 100:
            words.setdefault(f"{n:02d}", 1.0)
    for p in PUNCT:
        words.setdefault(p, 5.0)
    return list(words), list(words.values())


class WordSearch:
    """One model's word-level search state: vocabulary, isolated-output sums, HotFlip matrix."""

    def __init__(self, encoder: Encoder, config: WordSearchConfig | None = None) -> None:
        self.enc = encoder
        self.cfg = config or WordSearchConfig()
        torch = encoder.torch
        self.torch = torch
        table = torch.from_numpy(encoder.token_table()).to(encoder.device)
        words, prior = _vocabulary(encoder, self.cfg.vocab_size)
        tok = encoder.tokenizer(words, add_special_tokens=False)["input_ids"]
        keep = [i for i, ids in enumerate(tok) if 0 < len(ids) <= 6]
        self.words = [words[i] for i in keep]
        self.word_ids: list[tuple[int, ...]] = [tuple(tok[i]) for i in keep]
        self.index = {w: i for i, w in enumerate(self.words)}
        self.prior = torch.tensor([prior[i] for i in keep], dtype=torch.float32, device=encoder.device)
        # Isolated-output sum of each word: the linear estimate of what adding it does to the pool.
        flat = torch.tensor(
            [t for ids in self.word_ids for t in ids], dtype=torch.long, device=encoder.device
        )
        owner = torch.tensor(
            [i for i, ids in enumerate(self.word_ids) for _ in ids], dtype=torch.long, device=encoder.device
        )
        self.U = torch.zeros((len(self.words), table.shape[1]), device=encoder.device)
        self.U.index_add_(0, owner, table[flat])
        self.U_sq = (self.U * self.U).sum(dim=1)
        self.is_digit = torch.tensor([w.isdigit() for w in self.words], device=encoder.device)
        from scanner.pii import FIRST_NAMES, SURNAMES

        self.is_name = [w in FIRST_NAMES or w in SURNAMES for w in self.words]
        self.domains = [tuple(encoder.tokenize(d)) for d in EMAIL_DOMAINS]
        self.base_n = len(self.words)
        self.email_cue = {
            self.index[w] for w in ("email", "mail", "e", "@", "gmail", "com", "address") if w in self.index
        }
        # The most frequent words (wordfreq order) and punctuation: what the estimate ranks badly.
        self.func = self.prior.topk(min(self.cfg.func_words, len(self.words))).indices.tolist()
        self.func += [self.index[p] for p in (",", ".", "?", "'", "-", "@", ":") if p in self.index]

    # -- exact scoring ------------------------------------------------------------------------
    def _ids(self, s: Sequence[int]) -> tuple[int, ...]:
        return tuple(t for w in s for t in self.word_ids[w])[: self.enc.max_tokens]

    def _evaluate(self, cands: Sequence[tuple[int, ...]], target: Any) -> list[tuple[int, ...]]:
        fresh = list(dict.fromkeys(c for c in cands if c not in self.cache and len(c) <= self.cfg.max_words))
        room = self.cfg.budget - self.evals
        fresh = fresh[: max(room, 0)]
        if fresh:
            emb, sums = self.enc.forward_ids([self._ids(c) for c in fresh], batch_size=128)
            cos = (emb @ target).float().cpu().numpy()
            for c, score, s in zip(fresh, cos, sums, strict=True):
                self.cache[c] = (float(score), s)
            self.evals += len(fresh)
        return [c for c in dict.fromkeys(cands) if c in self.cache]

    def _done(self) -> bool:
        if self.evals >= self.cfg.budget or self.best[1] >= self.cfg.stop_cos:
            return True
        return self.cfg.max_seconds is not None and time.monotonic() - self.t0 > self.cfg.max_seconds

    @property
    def best(self) -> tuple[tuple[int, ...], float]:
        if not self.cache:
            return (), -1.0
        s = max(self.cache, key=lambda k: self.cache[k][0])
        return s, self.cache[s][0]

    def _top(self, pool: Sequence[tuple[int, ...]], k: int) -> list[tuple[int, ...]]:
        return sorted(set(pool), key=lambda c: -self.cache[c][0])[:k]

    # -- proposals ----------------------------------------------------------------------------
    def _est_add(self, base: Any, target: Any) -> Any:
        """Estimated cosine after adding each vocabulary word to pooled sums ``base`` (r×h → r×N)."""
        num = (base @ target)[:, None] + (self.U @ target)[None, :]
        den = ((base * base).sum(dim=1)[:, None] + 2 * (base @ self.U.T) + self.U_sq[None, :]).clamp(min=1e-9)
        return num / den.sqrt() + self.cfg.prior_weight * self.prior[None, :]

    def _func_edits(self, s: tuple[int, ...], target: Any) -> list[tuple[int, ...]]:
        """Frequent words probed exactly (appended), then the best few tried at every boundary.

        First-order estimates (isolated outputs, HotFlip) rank function words and their place
        poorly, and there are few of them, so exact probes are worth their cost."""
        probes = self._evaluate([s + (w,) for w in self.func], target)
        best = [c[-1] for c in self._top(probes, self.cfg.func_slots)]
        return [s[:i] + (w,) + s[i:] for w in best for i in range(len(s))]

    # -- phases -------------------------------------------------------------------------------
    def run(self, target_np: np.ndarray) -> WordOutcome:
        torch = self.torch
        cfg = self.cfg
        target = torch.from_numpy(np.asarray(target_np, dtype=np.float32)).to(self.enc.device)
        target = target / target.norm()
        for w in self.words[self.base_n :]:  # compound units are per-vector
            del self.index[w]
        del self.words[self.base_n :], self.word_ids[self.base_n :], self.is_name[self.base_n :]
        self.cache: dict[tuple[int, ...], tuple[float, Any]] = {}
        self.evals = 0
        self.t0 = time.monotonic()
        rng = random.Random(cfg.seed)
        trace: list[float] = []
        steps = 0

        beam = self._evaluate([()], target)
        stale = 0
        while not self._done():
            steps += 1
            before = self.best[1]
            sums = torch.stack([self.cache[s][1] for s in beam])
            est = self._est_add(sums, target)
            top = est.topk(cfg.est_top, dim=1).indices.cpu().tolist()
            # Digit groups rank low among 60k words even when the text is full of them; give the
            # best few their own slots so phone, card and SSN parts get a chance to enter.
            digits = est.masked_fill(~self.is_digit[None, :], -9.0).topk(cfg.build_digits, dim=1)
            top = [a + b for a, b in zip(top, digits.indices.cpu().tolist(), strict=True)]
            cands = [s + (w,) for s, row in zip(beam, top, strict=True) for w in row]
            if cfg.build_func:
                cands += self._func_edits(beam[0], target)
            beam = self._top(self._evaluate(cands, target) + beam, cfg.build_beam)
            trace.append(self.best[1])
            stale = stale + 1 if self.best[1] <= before + cfg.build_min_gain else 0
            if stale >= 2:
                break

        if not self._done():
            self._evaluate(self._email_edits(self.best[0]), target)
        # Repair: a cascade of edit classes, cheapest first; take the best edit of the first class
        # that improves and start over, so budget goes to many small steps, not one big round.
        best = self.best[0]
        swept: set[tuple[int, ...]] = set()
        while not self._done():
            steps += 1
            before = self.best[1]
            for kind in ("delete", "near", "sub", "func", "digits", "digitfix", "email", "far", "sweep"):
                if kind == "sweep":
                    if best in swept or len(best) * len(self.func) > cfg.sweep_max:
                        continue
                    swept.add(best)
                cands = self._edits(kind, best, target, rng)
                self._evaluate(cands, target)
                if self.best[1] > before + 1e-6 or self._done():
                    break
            trace.append(self.best[1])
            if self.best[1] <= before + 1e-6:
                break
            best = self.best[0]
        s, cos = self.best
        return WordOutcome(self._ids(s), cos, steps, self.evals, tuple(self.words[w] for w in s), trace)

    def _email_edits(self, s: tuple[int, ...]) -> list[tuple[int, ...]]:
        """``first.last@domain`` / ``first@domain`` built from recovered name-like words, as one unit.

        An address is 5–9 wordpieces that must all be right and in order; proposing it whole from
        the names the bag search already found is what makes it recoverable at all."""
        if not any(w in self.email_cue for w in s):
            return []
        names = list(dict.fromkeys(w for w in s if self.is_name[w]))[:3]
        if not names:
            return []
        at, dot = self.index["@"], self.index["."]
        locals_: list[tuple[int, ...]] = [(a,) for a in names]
        locals_ += [(a, dot, b) for a, b in itertools.permutations(names, 2)]
        out = []
        for local in locals_:
            for dom in self.domains:
                unit = self._compound(local + (at,), dom)
                if unit is None:
                    continue
                # Append it, or replace the stray pieces an address leaves behind (@, gmail, com).
                kept = tuple(
                    w for w in s if w not in self.email_cue or self.words[w] in ("email", "address", "mail")
                )
                out += [s + (unit,), kept + (unit,)]
        return out

    def _compound(self, head: tuple[int, ...], tail_ids: tuple[int, ...]) -> int | None:
        """A new vocabulary unit made of existing words plus raw ids (its estimate row is a sum)."""
        text = "".join(self.words[w] for w in head) + self.enc.decode(tail_ids).replace(" ", "")
        if text in self.index:
            return self.index[text]
        ids = tuple(t for w in head for t in self.word_ids[w]) + tail_ids
        self.index[text] = len(self.words)
        self.words.append(text)
        self.word_ids.append(ids)
        self.is_name.append(False)
        return self.index[text]

    def _edits(self, kind: str, s: tuple[int, ...], target: Any, rng: random.Random) -> list[tuple[int, ...]]:
        cfg = self.cfg
        n = len(s)
        if kind == "delete":
            return [s[:i] + s[i + 1 :] for i in range(n)]
        if kind == "func":
            return self._func_edits(s, target)
        if kind == "email":
            return self._email_edits(s)
        if kind == "digitfix":
            # Exact local search in digit-string space: the cosine is smooth in single digits
            # (…-5308 scores 0.998 against …-5309), so one-digit edits walk a group to the value.
            out = []
            for i, w in enumerate(s):
                word = self.words[w]
                if not word.isdigit():
                    continue
                variants = {word[:k] + c + word[k + 1 :] for k in range(len(word)) for c in "0123456789"}
                variants |= {word + c for c in "0123456789"} | {c + word for c in "0123456789"}
                variants |= {word[:-1], word[1:]}
                for v in variants - {word, ""}:
                    if v in self.index:
                        out.append(s[:i] + (self.index[v],) + s[i + 1 :])
            return out
        if kind == "digits":
            # Digit groups move the cosine a lot (one right group of a card number: +0.02–0.03)
            # but rank low among 60k words: probe the best-estimated ones exactly, at the end and
            # right after the last digit group.
            est = self._est_add(self.cache[s][1][None, :], target)[0]
            top = est.masked_fill(~self.is_digit, -9.0).topk(cfg.digit_probe).indices.tolist()
            last = max((i + 1 for i, w in enumerate(s) if self.words[w].isdigit()), default=n)
            out = [s + (d,) for d in top]
            if last != n:
                out += [s[:last] + (d,) + s[last:] for d in top]
            return out
        if kind == "sweep":
            return [s[:i] + (w,) + s[i:] for w in self.func for i in range(n + 1)]
        if kind == "sub":
            if not n:
                return []
            out: list[tuple[int, ...]] = []
            parts = self.enc.forward_ids([self._ids(s[:i] + s[i + 1 :]) for i in range(n)])[1]
            self.evals += n
            est = self._est_add(parts, target)  # (n, N): word i removed, each word added
            top = est.topk(cfg.sub_per_pos + 1, dim=1).indices.cpu().tolist()
            for i, row in enumerate(top):
                out += [s[:i] + (w,) + s[i + 1 :] for w in row if w != s[i]][: cfg.sub_per_pos]
            # Digit groups: the general ranking drowns them, so rank digit units on their own.
            digit_pos = [i for i, w in enumerate(s) if self.words[w].isdigit()]
            if digit_pos:
                dest = est[digit_pos].masked_fill(~self.is_digit[None, :], -9.0)
                rows = dest.topk(cfg.digit_subs + 1, dim=1).indices.cpu().tolist()
                for i, row in zip(digit_pos, rows, strict=True):
                    out += [s[:i] + (w,) + s[i + 1 :] for w in row if w != s[i]][: cfg.digit_subs]
            return out
        # Moves: one word or a span of 2–3 words elsewhere; "near" = short hops, "far" = sampled rest.
        moves = [(i, 1, j) for i in range(n) for j in range(n) if i != j]
        moves += [(i, ln, j) for ln in (2, 3) for i in range(n - ln + 1) for j in range(n - ln + 1) if i != j]
        near = [m for m in moves if abs(m[0] - m[2]) <= 2]
        if kind == "near":
            moves = near
        else:
            rest = [m for m in moves if abs(m[0] - m[2]) > 2]
            moves = rng.sample(rest, min(len(rest), cfg.move_sample))
        out = []
        for i, ln, j in moves:
            span, rest_seq = s[i : i + ln], s[:i] + s[i + ln :]
            out.append(rest_seq[:j] + span + rest_seq[j:])
        return out


__all__ = ["WordOutcome", "WordSearch", "WordSearchConfig"]
