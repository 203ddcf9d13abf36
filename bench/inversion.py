"""Inversion benchmark: how much of a leaked MiniLM vector's text vecleak recovers, and how fast.

    python bench/inversion.py [--set test|dev] [--method words|tokens] [--budget N]
                              [--baseline-method tokens] [--baseline-budget 1000] [--limit K]
                              [--knob KNOB=VALUE ...] [--baseline-set KNOB=VALUE ...]
                              [--threads N] [--jobs N] [--baseline-jobs N]
                              [--grep REGEX] [--skip K] [--shard I/N]

The test set (bench/data/inversion_test.txt) is fixed and never used for tuning; the dev set is.
Metrics (definitions printed with the results):
- token F1: set-based F1 over lower-cased words (\\w+), averaged over texts (Vec2Text-style)
- exact: lower-cased, whitespace-normalised string equality
- BLEU: sacrebleu corpus BLEU, and the mean of per-sentence BLEU (Vec2Text-style)
- cosine: target vs re-embedding of the printed reconstruction
- PII recovered: PII items in the original (scanner.pii) found verbatim (spaces ignored) in the
  reconstruction's PII items
- seconds/vector: wall clock of Inverter.invert, torch threads as given; cpu s/vector is the
  inverting process's CPU time (user+sys) per vector, which the other jobs on a shared machine
  inflate less; wall s/vector is the whole run's wall clock (model loads included; they are also
  given alone as load_seconds) over the vectors, which ``--jobs N`` (N worker processes sharing
  ``--threads``) lowers
The baseline in the same run is another method/budget (default: the token search at budget 1000,
the previous published row), run on the same texts right before the result.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sacrebleu  # noqa: E402

from scanner import inversion  # noqa: E402
from scanner.inversion.metrics import norm, token_f1  # noqa: E402
from scanner.inversion.models import DEFAULT_MODEL, load_encoder  # noqa: E402
from scanner.inversion.pool import InversionPool  # noqa: E402
from scanner.inversion.search import SearchConfig  # noqa: E402
from scanner.inversion.words import WordSearchConfig  # noqa: E402
from scanner.pii import find_pii  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
PROGRESS = False


def pii_key(value: str) -> str:
    return re.sub(r"\s", "", value.lower())


def build(
    method: str, budget: int | None, first_guess: bool, device: str, threads: int, knobs: list[str]
) -> inversion.Inverter:
    """One run's inverter, its knobs set: what each worker of the run's pool builds (picklable)."""
    inv = inversion.Inverter(
        device=device, budget=budget, threads=threads, method=method, first_guess=first_guess
    )
    set_knobs(inv, knobs)
    inv.encoder.token_table()  # one-time cache build is not per-vector cost
    return inv


def evaluate(factory: Callable[[], inversion.Inverter], jobs: int, refs: list[str], targets: Any) -> dict:
    """Invert ``targets`` with ``jobs`` workers and score the texts against ``refs``. Seconds and
    CPU seconds are per vector, as each worker measured them; wall seconds are the whole run's,
    model loads included, over the number of vectors: what ``--jobs`` changes. ``load_seconds``
    is the pool's start, every worker's load (the part a long input makes small)."""
    preds, cosines, seconds, rows = [], [], [], []
    pii_total = pii_hit = 0
    cpu = []
    t0 = time.perf_counter()
    with InversionPool(factory, jobs) as pool:
        loaded = time.perf_counter() - t0
        for (ref, _vec), done in pool.map(zip(refs, targets, strict=True), lambda item: item[1]):
            res = done.result
            if res is None:
                raise SystemExit(f"cannot invert the vector of {ref!r}: {done.error}")
            seconds.append(res.seconds)
            cpu.append(done.cpu_seconds)
            preds.append(res.text)
            cosines.append(res.cosine)
            found = {(it.type, pii_key(it.value)) for it in res.pii}
            for it in find_pii(ref):
                pii_total += 1
                pii_hit += (it.type, pii_key(it.value)) in found
            rows.append(
                {
                    "ref": ref,
                    "pred": res.text,
                    "cos": round(res.cosine, 4),
                    "s": round(seconds[-1], 2),
                    "evals": res.evaluations,
                }
            )
            if PROGRESS:  # a run cut off by a time limit still leaves its per-vector figures
                print(
                    f"  {len(rows)}/{len(refs)} cos {res.cosine:.4f} {seconds[-1]:.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
    wall = time.perf_counter() - t0
    return {
        "n": len(refs),
        "jobs": jobs,
        "token_f1": statistics.mean(token_f1(p, r) for p, r in zip(preds, refs, strict=True)),
        "exact": statistics.mean(norm(p) == norm(r) for p, r in zip(preds, refs, strict=True)),
        "bleu_corpus": sacrebleu.corpus_bleu(preds, [refs]).score,
        "bleu_sentence_mean": statistics.mean(
            sacrebleu.sentence_bleu(p, [r]).score for p, r in zip(preds, refs, strict=True)
        ),
        "cosine": statistics.mean(cosines),
        "pii_items": pii_total,
        "pii_recovered": pii_hit / pii_total if pii_total else None,
        "seconds_per_vector": statistics.mean(seconds),
        "cpu_seconds_per_vector": statistics.mean(cpu),
        "wall_seconds_per_vector": wall / len(refs),
        "load_seconds": loaded,
        "rows": rows,
    }


def set_knobs(inv: inversion.Inverter, items: list[str]) -> None:
    """Apply ``KNOB=VALUE`` overrides to ``inv``'s WordSearchConfig, each value as the knob's type."""
    cfg = inv.search.cfg
    for item in items:
        knob, _, text = item.partition("=")
        if not hasattr(cfg, knob):
            raise SystemExit(f"unknown {type(cfg).__name__} knob {knob!r} in {item!r}")
        old = getattr(cfg, knob)
        if isinstance(old, bool):  # bool("False") would be True, so booleans are spelled out
            if text.lower() not in ("true", "false", "1", "0"):
                raise SystemExit(f"{item!r}: expected true or false")
            value: object = text.lower() in ("true", "1")
        else:
            try:
                value = float(text) if old is None else type(old)(text)
            except ValueError:
                raise SystemExit(
                    f"{item!r}: expected a {type(old).__name__ if old is not None else 'number'}"
                ) from None
        setattr(cfg, knob, value)


def shard(text: str) -> tuple[int, int]:
    """``I/N`` with 0 <= I < N, for ``--shard``."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N, e.g. 0/2, got {text!r}") from None
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"expected 0 <= I < N, got {text!r}")
    return i, n


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default="test", choices=("test", "dev"))
    ap.add_argument("--method", default="words", choices=inversion.METHODS)
    ap.add_argument("--budget", type=int, default=None)
    ap.add_argument("--baseline-method", default="tokens", choices=inversion.METHODS)
    ap.add_argument("--baseline-budget", type=int, default=1000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2, help="torch threads in all, shared by --jobs")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes for the result run")
    ap.add_argument("--baseline-jobs", type=int, default=1, help="worker processes for the baseline")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument(
        "--skip",
        type=int,
        default=0,
        metavar="K",
        help="leave out the first K texts (after --grep, before --shard): --skip 30 runs the second "
        "half of the dev set alone",
    )
    ap.add_argument(
        "--shard",
        default=None,
        type=shard,
        metavar="I/N",
        help="every N-th text from the I-th (0-based), after --grep: run N shards, one per core",
    )
    ap.add_argument(
        "--grep",
        default=None,
        metavar="REGEX",
        help="only the texts matching REGEX (before --limit), e.g. '[0-9]' for the digit-bearing ones",
    )
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument(
        "--first-guess",
        default="off",
        choices=("on", "off"),
        help="start the word search from the trained decoder's texts (when its weights load)",
    )
    ap.add_argument("--baseline-first-guess", default="off", choices=("on", "off"))
    ap.add_argument(
        "--knob",
        action="append",
        default=[],
        metavar="KNOB=VALUE",
        help="override a WordSearchConfig knob for the result run, e.g. insert_budget=900",
    )
    ap.add_argument(
        "--baseline-set",
        action="append",
        default=[],
        metavar="KNOB=VALUE",
        help="override a WordSearchConfig knob for the baseline only, e.g. digit_budget=0 prune_eps=0 "
        "(the word search before the digit phase and the prune), so old and new run on the same texts",
    )
    ap.add_argument("--progress", action="store_true", help="a line per vector on stderr as it finishes")
    args = ap.parse_args()
    if args.baseline_set and not args.no_baseline and args.baseline_method != "words":
        # The baseline is the wordpiece search by default, whose config has none of these knobs.
        ap.error(
            "--baseline-set takes word-search knobs: add --baseline-method words "
            "(and --baseline-budget 2500, the word search's default budget)"
        )
    global PROGRESS
    PROGRESS = args.progress
    refs = [x for x in (DATA / f"inversion_{args.set}.txt").read_text().splitlines() if x.strip()]
    if args.grep:
        refs = [x for x in refs if re.search(args.grep, x)]
    refs = refs[args.skip :]
    if args.shard:
        i, n = args.shard
        refs = refs[i::n]
    refs = refs[: args.limit]

    def factory(method: str, budget: int | None, first_guess: str, knobs: list[str], jobs: int) -> Any:
        threads = max(1, args.threads // jobs)
        return partial(build, method, budget, first_guess == "on", args.device, threads, knobs)

    if args.jobs < 1 or args.baseline_jobs < 1:
        ap.error("--jobs and --baseline-jobs must be at least 1")
    targets = load_encoder(DEFAULT_MODEL, device=args.device, threads=args.threads).embed_texts(refs)
    configs = {"words": WordSearchConfig, "tokens": SearchConfig}
    report: dict[str, object] = {
        "set": args.set,
        "grep": args.grep,
        "shard": "/".join(map(str, args.shard)) if args.shard else None,
        "device": args.device,
        "threads": args.threads,
        "jobs": args.jobs,
        "method": args.method,
        "budget": args.budget if args.budget is not None else configs[args.method]().budget,
        "first_guess": args.first_guess == "on",
        "knobs": args.knob,
        "loadavg_start": os.getloadavg(),
    }
    if not args.no_baseline:
        report["baseline_set"] = args.baseline_set
        report["baseline_method"] = args.baseline_method
        report["baseline_budget"] = args.baseline_budget
        report["baseline_first_guess"] = args.baseline_first_guess == "on"
        report["baseline_jobs"] = args.baseline_jobs
        base = factory(
            args.baseline_method,
            args.baseline_budget,
            args.baseline_first_guess,
            args.baseline_set,
            args.baseline_jobs,
        )
        report["baseline"] = evaluate(base, args.baseline_jobs, refs, targets)
    result = factory(args.method, args.budget, args.first_guess, args.knob, args.jobs)
    report["result"] = evaluate(result, args.jobs, refs, targets)
    report["loadavg_end"] = os.getloadavg()
    for key in ("baseline", "result"):
        if key in report:
            r = report[key]
            print(
                f"{key:9s} F1 {r['token_f1']:.3f}  exact {r['exact']:.0%}  BLEU {r['bleu_corpus']:.1f} "
                f"(sent {r['bleu_sentence_mean']:.1f})  cos {r['cosine']:.4f}  "
                f"PII {round((r['pii_recovered'] or 0) * r['pii_items'])}/{r['pii_items']}  {r['seconds_per_vector']:.1f} s/vector (cpu {r['cpu_seconds_per_vector']:.1f}, wall {r['wall_seconds_per_vector']:.1f})",
                file=sys.stderr,
            )
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
