"""The LM's word ids of the search's whole vocabulary, as an ``Inverter`` reads them once at start:
one tokenizer call a word (the path before ``FluencyLM.words_ids``) against one batch, in one
process, alternated, with a check that both give the same ids.

    python bench/lm_word_ids.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scanner.inversion import fluency  # noqa: E402
from scanner.inversion.models import load_encoder  # noqa: E402
from scanner.inversion.words import WordSearchConfig, _vocabulary  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    lm = fluency.load("cpu")
    if lm is None:
        raise SystemExit(fluency.unavailable_reason())
    words = [w.lower() for w in _vocabulary(load_encoder(threads=1), WordSearchConfig().vocab_size)[0]]

    def one_call_a_word() -> list[tuple[int, ...]]:
        return [
            tuple(lm.tok(lm._key(w, first), add_special_tokens=False)["input_ids"]) or (lm.start,)
            for first in (True, False)
            for w in words
        ]

    def one_batch() -> list[tuple[int, ...]]:
        lm._ids.clear()
        return [ids for first in (True, False) for ids in lm.words_ids(words, first)]

    for rnd in range(args.rounds):
        for name, fn in (("one tokenizer call a word", one_call_a_word), ("words_ids, one batch", one_batch)):
            t0 = time.perf_counter()
            fn()
            print(
                f"round {rnd + 1}: {name:26s} {time.perf_counter() - t0:6.2f} s ({len(words)} words, twice)"
            )
    print("the same ids:", one_call_a_word() == one_batch())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
