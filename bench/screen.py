"""Cost and fidelity of the per-group search's bfloat16 screen (``Encoder.screen_ids``).

    python bench/screen.py [--threads 1] [--values 1000] [--int8]

Scores every value of the last group of the dev SSN (``her social security number is 078-05-NNN0``)
against the true text's vector three ways: the exact float32 forward (``forward_ids``), the
bfloat16 copy (``screen_ids``) and, with ``--int8``, a dynamic int8 quantisation for comparison.
Prints seconds per text, the largest cosine difference to float32 and the true value's rank.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from scanner.inversion.models import DEFAULT_MODEL, load_encoder  # noqa: E402

TRUTH = "her social security number is 078-05-1120"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--values", type=int, default=1000)
    ap.add_argument("--int8", action="store_true", help="also time a dynamic int8 copy (for comparison)")
    args = ap.parse_args()
    enc = load_encoder(DEFAULT_MODEL, threads=args.threads)
    torch = enc.torch
    target = enc.embed_texts([TRUTH])[0]
    values = [f"{v:03d}0" for v in range(args.values)]
    seqs = [enc.tokenize(f"her social security number is 078-05-{v}") for v in values]
    true_index = values.index("1120")

    def measure(embed) -> dict[str, float]:
        embed(seqs[:128])  # warm-up: first-call allocations, the bfloat16 copy
        t0 = time.perf_counter()
        emb = embed(seqs)
        seconds = time.perf_counter() - t0
        cos = emb.float().cpu().numpy() @ target
        return {
            "ms_per_text": 1000 * seconds / len(seqs),
            "cos": cos,
            "rank": int((cos > cos[true_index]).sum()),
        }

    rows = {"float32": measure(lambda s: enc.forward_ids(s, batch_size=128)[0])}
    rows["bfloat16"] = measure(lambda s: enc.screen_ids(s, batch_size=128))
    if args.int8:
        exact_model = enc.model
        enc.model = torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(exact_model), {torch.nn.Linear}, dtype=torch.qint8
        )
        try:
            rows["int8"] = measure(lambda s: enc.forward_ids(s, batch_size=128)[0])
        finally:
            enc.model = exact_model
    exact = rows["float32"]["cos"]
    report = {
        "threads": args.threads,
        "texts": len(seqs),
        "tokens_per_text": round(sum(len(s) + 2 for s in seqs) / len(seqs), 1),
        "fast_bf16": enc.fast_bf16,
        "rows": {
            name: {
                "ms_per_text": round(r["ms_per_text"], 3),
                "max_cos_diff": round(float(np.abs(r["cos"] - exact).max()), 5),
                "true_value_rank": r["rank"],
            }
            for name, r in rows.items()
        },
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
