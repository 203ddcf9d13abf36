"""Where a scan's CPU goes: wrap each pipeline stage with a CPU-time counter and run the real CLI.

Usage: PYTHONPATH=. python bench/stages.py FILE   (pin it with taskset -c 0 to match bench/throughput.py)
Stages nest: pipeline.scan holds prefilter, detect, classify and fingerprint; engine.feed holds
pipeline.scan, rules and ecs+dumps. What main spends outside engine.feed is start-up and reading.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
TOTALS: dict[str, float] = {}


def timed(owner: Any, name: str, label: str) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            TOTALS[label] = TOTALS.get(label, 0.0) + time.process_time() - start

    setattr(owner, name, wrapper)


def main(path: str) -> None:
    t0 = time.process_time()
    import scanner.engine as engine
    import scanner.pipeline as pipeline
    import scanner.prefilter as prefilter
    import scanner.rules as rules
    import scanner.sinks.jsonl as jsonl
    from scanner.cli import main as cli_main
    from scanner.fingerprint import Fingerprinter
    from scanner.fingerprint.aggregate import SourcePool
    from scanner.model import Record

    timed(prefilter, "scan", "prefilter")
    timed(pipeline, "classify", "classify")
    timed(pipeline.Pipeline, "_detect", "detect")
    timed(Fingerprinter, "guess_candidates", "fingerprint")
    timed(rules.RuleSet, "evaluate", "rules")
    timed(jsonl.JsonlSink, "send", "ecs+dumps")
    timed(pipeline.Pipeline, "scan", "pipeline.scan")
    timed(engine.Engine, "feed", "engine.feed")
    timed(SourcePool, "apply", "pool")
    timed(engine.Engine, "_admit", "dedup+baseline")
    timed(Record, "line_at", "line numbers")
    imported = time.process_time() - t0
    stdout, sys.stdout = sys.stdout, open(os.devnull, "w")  # noqa: SIM115 - restored below
    start = time.process_time()
    try:
        cli_main(["scan", path, "--format", "jsonl", "--no-progress"])
    finally:
        sys.stdout.close()
        sys.stdout = stdout
    print(f"imports {imported:.3f} s, vecleak scan {time.process_time() - start:.3f} s CPU")
    for label, seconds in sorted(TOTALS.items(), key=lambda kv: -kv[1]):
        print(f"  {label}: {seconds:.3f} s")


if __name__ == "__main__":
    main(sys.argv[1])
