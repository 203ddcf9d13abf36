"""Knob sweep: many inversion configurations over one text set, side by side, in parallel.

    python bench/sweep.py VARIANTS [--set dev] [--device cuda] [--jobs 12] [--deadline 400]
                          [--combine 4] [--skip K] [--limit N] [--out sweep.json]

VARIANTS is a file with one configuration a line, ``NAME KNOB=VALUE ...`` (``#`` starts a comment);
``base`` (no knobs, the defaults) always runs. Each configuration is one ``bench/inversion.py
--no-baseline --threads 1 --knob ...`` process, ``--jobs`` at a time. The search counts
evaluations, not seconds, so each one's texts are what a lone run would print on any device: a
GPU runs a sweep that would take the 2-core CPU hours, while its timings, taken side by side, are
not figures to quote (``evals`` is the cost that is).

With ``--combine K``, a second wave joins the K configurations that beat ``base`` on token F1 at
about its cost (the best first, a knob taken from the better one where two set it): the best two together, the best
three, and so on. Nothing starts that could not end within ``--deadline`` seconds, judged by the
fastest run finished so far, and a run still going then is stopped, so a device call ends on
time. One JSON file holds every report.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMBINE_COST = 1.1
sys.path.insert(0, str(HERE.parent))

from scanner.inversion.metrics import norm  # noqa: E402


def read_variants(path: Path) -> dict[str, list[str]]:
    """``NAME KNOB=VALUE ...`` lines as {name: knobs}, ``base`` first."""
    variants: dict[str, list[str]] = {"base": []}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        name, knobs = words[0], words[1:]
        if name in variants and name != "base" or any("=" not in k for k in knobs):
            raise SystemExit(f"{path}:{n}: expected a new NAME then KNOB=VALUE items, got {line!r}")
        variants[name] = knobs
    return variants


def run_wave(variants: dict[str, list[str]], args: argparse.Namespace, stop_at: float) -> dict[str, dict]:
    """Every variant as its own bench process, ``args.jobs`` at a time; the reports by name."""
    pending = list(variants.items())
    running: dict[str, tuple[subprocess.Popen, Path, float]] = {}
    reports: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="vecleak-sweep-") as tmp_dir:
        tmp = Path(tmp_dir)
        while pending or running:
            while pending and len(running) < args.jobs and can_finish(reports, stop_at):
                name, knobs = pending.pop(0)
                out = tmp / f"{name}.json"
                cmd = [sys.executable, str(HERE / "inversion.py"), "--set", args.set, "--device", args.device]
                cmd += ["--threads", "1", "--no-baseline"] + [f"--knob={k}" for k in knobs]
                cmd += ["--skip", str(args.skip)] if args.skip else []
                cmd += ["--limit", str(args.limit)] if args.limit else []
                with out.open("w") as fh, out.with_suffix(".err").open("w") as err:
                    running[name] = (
                        subprocess.Popen(cmd, stdout=fh, stderr=err),
                        out,
                        time.monotonic(),
                    )
            if time.monotonic() >= stop_at:
                pending.clear()
            for name, (proc, out, t0) in list(running.items()):
                if proc.poll() is None and time.monotonic() < stop_at:
                    continue
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                    print(f"  {name}: stopped at the deadline", file=sys.stderr)
                elif proc.returncode == 0:
                    report = json.loads(out.read_text())
                    report["wall_seconds"] = round(time.monotonic() - t0, 1)
                    reports[name] = report
                    print(f"  {name}: {summary(report['result'])}", file=sys.stderr, flush=True)
                else:
                    why = out.with_suffix(".err").read_text(errors="replace").strip().splitlines()[-1:]
                    print(f"  {name}: exit {proc.returncode}: {''.join(why)}", file=sys.stderr)
                del running[name]
            time.sleep(0.5)
    return reports


def can_finish(reports: dict[str, dict], stop_at: float) -> bool:
    """Whether a run started now can end by ``stop_at``: as long as the fastest finished run took
    fits. Side by side, a run is several times slower than alone (GPU, 2026-11-28: 215 s with 14
    at once), so a run started late would be stopped unfinished and slow the others meanwhile."""
    fastest = min((rep["wall_seconds"] for rep in reports.values()), default=0.0)
    return time.monotonic() + fastest < stop_at


def mean_evals(result: dict) -> float:
    return statistics.mean(r["evals"] for r in result["rows"])


def summary(result: dict) -> str:
    rows = result["rows"]
    pii = round((result["pii_recovered"] or 0) * result["pii_items"])
    return (
        f"F1 {result['token_f1']:.3f} exact {sum(norm(r['pred']) == norm(r['ref']) for r in rows)}/{len(rows)} "
        f"PII {pii}/{result['pii_items']} cos {result['cosine']:.4f} "
        f"evals {mean_evals(result):.0f}"
    )


def combinations(variants: dict[str, list[str]], reports: dict[str, dict], k: int) -> dict[str, list[str]]:
    """The best ``k`` winners over ``base`` joined: best two, best three, ... (better one's knob wins).

    Only winners within ``COMBINE_COST`` of base's mean evaluations count: a bigger budget is a
    trade of time, read from its own row, not a free gain to stack."""
    base = reports["base"]["result"]
    winners = sorted(
        (
            n
            for n, rep in reports.items()
            if n != "base"
            and rep["result"]["token_f1"] > base["token_f1"]
            and mean_evals(rep["result"]) <= COMBINE_COST * mean_evals(base)
        ),
        key=lambda n: -reports[n]["result"]["token_f1"],
    )[:k]
    combos: dict[str, list[str]] = {}
    for size in range(2, len(winners) + 1):
        knobs: dict[str, str] = {}
        for name in winners[:size]:
            for item in variants[name]:
                knobs.setdefault(item.partition("=")[0], item)
        combos["+".join(winners[:size])] = list(knobs.values())
    return combos


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("variants", type=Path)
    ap.add_argument("--set", default="dev", choices=("dev", "test"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--deadline", type=float, default=3600.0, help="seconds after which nothing runs")
    ap.add_argument(
        "--skip", type=int, default=0, help="leave out the first K texts (dev: 30, the newer half)"
    )
    ap.add_argument(
        "--limit", type=int, default=None, help="the first N texts only (dev: 30, the older half)"
    )
    ap.add_argument("--combine", type=int, default=0, metavar="K")
    ap.add_argument("--out", type=Path, default=Path("sweep.json"))
    args = ap.parse_args()
    stop_at = time.monotonic() + args.deadline
    variants = read_variants(args.variants)
    reports = run_wave(variants, args, stop_at)
    if args.combine and "base" in reports:
        combos = combinations(variants, reports, args.combine)
        variants.update(combos)
        reports.update(run_wave(combos, args, stop_at))
    args.out.write_text(json.dumps({"variants": variants, "reports": reports}, indent=1))
    if "base" in reports:
        base = reports["base"]["result"]["token_f1"]
        for name, rep in sorted(reports.items(), key=lambda kv: -kv[1]["result"]["token_f1"]):
            res = rep["result"]
            print(f"{res['token_f1'] - base:+.3f} {summary(res)} {rep['wall_seconds']:6.1f}s  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
