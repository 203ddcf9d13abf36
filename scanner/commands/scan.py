"""``vecleak scan PATH...``: find, classify, fingerprint and alert on vectors in files."""

from __future__ import annotations

import argparse
import glob
import os
import sqlite3
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

from scanner import parallel
from scanner.cli import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, error
from scanner.engine import Engine, load_baseline, write_baseline
from scanner.enrichment import SampledInversion
from scanner.model import Level
from scanner.noise import NoiseControl, parse_duration
from scanner.pipeline import Pipeline
from scanner.rules import RuleError, load_rules
from scanner.sinks import FORMATS, open_sink
from scanner.sources import scanstate
from scanner.sources.files import FileSource
from scanner.state import StateError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scan",
        help="scan files, directories, compressed logs or stdin",
        description="Scan files, directories (recursively), .gz/.bz2/.xz logs, or - for stdin.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="file, directory or - (stdin)")
    add_output_options(p)
    p.add_argument(
        "--include", action="append", default=[], metavar="GLOB", help="only files matching (repeatable)"
    )
    p.add_argument(
        "--exclude", action="append", default=[], metavar="GLOB", help="skip files matching (repeatable)"
    )
    p.add_argument(
        "--jobs",
        type=_jobs,
        default=1,
        metavar="N",
        help="worker processes that scan (default 1: no workers); auto: one per CPU this process may use."
        " Output is the same as with 1",
    )
    p.add_argument(
        "--state",
        metavar="FILE",
        help="incremental runs: remember in FILE (SQLite, created 0600) how far each file was scanned,"
        " and scan only what is new since (files are known by their content: rotated and compressed"
        " logs too)",
    )
    p.add_argument(
        "--state-ttl",
        type=_duration,
        default=scanstate.DEFAULT_TTL_S,
        metavar="DURATION",
        help="forget files not seen for this long (default 30d)",
    )
    add_invert_options(p)
    p.set_defaults(func=run)


def _jobs(text: str) -> int:
    return parallel.available_cpus() if text == "auto" else _positive_int(text)


def add_invert_options(p: argparse.ArgumentParser) -> None:
    """``--invert`` and friends; :func:`prepare` reads them, so any scanning command can add them."""
    p.add_argument(
        "--invert",
        action="store_true",
        help="invert a sample of the findings back to text (local models only; needs vecleak[invert])",
    )
    p.add_argument(
        "--invert-sample",
        type=_positive_int,
        default=3,
        metavar="N",
        help="invert the first N distinct vectors per source x model (default 3)",
    )
    p.add_argument(
        "--invert-budget",
        type=_positive_int,
        default=None,
        metavar="B",
        help="re-embedded candidates per inversion (default: the search's own, 2500); lower is faster",
    )
    p.add_argument(
        "--invert-jobs",
        type=_positive_int,
        default=1,
        metavar="N",
        help="invert N sampled vectors at once, one worker process each (default 1); each loads its"
        " own model (about 1.3 GB)",
    )
    p.add_argument(
        "--invert-first-guess",
        action="store_true",
        help="where an inversion is stuck, also repair the trained decoder's guess (as invert --first-guess)",
    )
    p.add_argument(
        "--reveal",
        action="store_true",
        help="clear inverted text in the stdout alerts (jsonl/ecs/table); --output sinks stay masked",
    )


def add_output_options(p: argparse.ArgumentParser) -> None:
    """Options every scanning command shares (scan, es scan)."""
    p.add_argument(
        "--format",
        choices=sorted(FORMATS),
        default=None,
        help="stdout format (default: table on a terminal, else jsonl)",
    )
    p.add_argument(
        "--output",
        action="append",
        default=[],
        metavar="SINK:TARGET",
        help="also deliver alerts there (repeatable)",
    )
    p.add_argument(
        "--rules",
        action="append",
        default=[],
        metavar="PATH",
        help="rule file or directory (default: the shipped pack)",
    )
    p.add_argument(
        "--baseline", metavar="FILE", help="suppress alerts whose fingerprints are in this baseline"
    )
    p.add_argument(
        "--write-baseline", metavar="FILE", help="write every alert's fingerprint here (hashes only)"
    )
    p.add_argument(
        "--fail-on",
        default="informational",
        metavar="LEVEL",
        help="exit 3 when an alert is at or above LEVEL (default: informational)",
    )
    p.add_argument(
        "--group-window",
        type=_duration,
        default=None,
        metavar="DURATION",
        help="one alert per source x model x rule per window (e.g. 60s, 5m), then a roll-up with a count;"
        " default off: every distinct vector is reported",
    )
    p.add_argument(
        "--max-alerts-per-minute",
        type=_positive_int,
        default=None,
        metavar="N",
        help="send at most N alerts a minute (token bucket); the rest are counted and rolled up",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


REVEAL_FORMATS = ("table", "jsonl", "ecs")


def open_sinks(args: argparse.Namespace, console: Console) -> list[Any]:
    fmt = args.format or ("table" if sys.stdout.isatty() else "jsonl")
    reveal = bool(getattr(args, "reveal", False))
    if reveal and fmt not in REVEAL_FORMATS:
        raise ValueError(f"--reveal works with --format {'/'.join(REVEAL_FORMATS)}, not {fmt}")
    # Clear text goes to stdout only, and only when asked: --output files and feeds stay masked.
    sinks = [open_sink(FORMATS[fmt], console=console, buffered=True, **({"reveal": True} if reveal else {}))]
    for spec in args.output:
        sink = open_sink(spec)
        sink.routed = True  # --output sinks honour a rule's ``outputs:``; stdout gets every alert
        sinks.append(sink)
    return sinks


def prepare(args: argparse.Namespace, pipeline: Pipeline | None = None) -> tuple[Engine, Level] | int:
    """Rules, sinks, baseline and the engine, or an exit code after a clear error on stderr."""
    try:
        fail_on = Level.parse(args.fail_on)
        inversion = _sampled_inversion(args)
        rules = load_rules(args.rules or None)
        baseline = load_baseline(args.baseline) if args.baseline else frozenset()
        sinks = open_sinks(args, Console(file=sys.stdout))
    except RuleError as exc:
        for problem in exc.problems:
            error(problem)
        return EXIT_ERROR
    except (OSError, ValueError) as exc:
        error(str(exc))
        return EXIT_ERROR
    noise = NoiseControl(args.group_window, args.max_alerts_per_minute)
    engine = Engine(pipeline or Pipeline(), rules, sinks, baseline=baseline, noise=noise, inversion=inversion)
    return engine, fail_on


def _sampled_inversion(args: argparse.Namespace) -> SampledInversion | None:
    """The inversion worker for ``--invert``; raises ValueError when torch is not installed."""
    if not getattr(args, "invert", False):
        if getattr(args, "reveal", False):
            raise ValueError("--reveal shows inverted text: use it with --invert")
        return None
    from scanner import inversion  # no torch yet: available() only looks for it

    if not inversion.available():
        raise ValueError(
            "--invert needs torch and transformers, which are not installed: pip install 'vecleak[invert]'"
        )
    budget, guess, jobs = args.invert_budget, args.invert_first_guess, args.invert_jobs
    return SampledInversion(
        lambda: inversion.InversionEnricher(budget=budget, first_guess=guess, jobs=jobs),
        sample=args.invert_sample,
        queue_size=max(8, 2 * jobs),
        workers=jobs,
    )


def finish(args: argparse.Namespace, engine: Engine, fail_on: Level, files: int, extra: str = "") -> int:
    """Deliver what is held, close the sinks, print the summary line (``extra`` appended)."""
    _wait_inversions(engine)
    summary = engine.close(files)
    if args.write_baseline:
        # engine.seen: every new alert's fingerprint, including those folded into roll-ups.
        n = write_baseline(args.write_baseline, engine.sent, engine.baseline | engine.seen)
        Console(file=sys.stderr).print(f"wrote {n} fingerprint(s) to {args.write_baseline}")
    if (args.format or ("table" if sys.stdout.isatty() else "jsonl")) != "table":
        Console(file=sys.stderr).print(
            f"vecleak: {summary['findings']} finding(s), {summary['alerts']} alert(s), "
            f"{summary['diagnostics']} input problem(s), {summary['bytes']:,} bytes in {summary['seconds']:.2f}s"
            + (
                f"; {summary['grouped']} grouped, {summary['rate_limited']} rate-limited,"
                f" {summary['rollups']} roll-up(s)"
                if summary["grouped"] or summary["rate_limited"]
                else ""
            )
            + (f"; {summary['inverted']} inverted" if engine.inversion is not None else "")
            + (f"; {extra}" if extra else ""),
            highlight=False,
            soft_wrap=True,  # one line, for grep and CI logs
        )
    highest = engine.stats.highest
    return EXIT_FINDINGS if highest is not None and highest >= fail_on else EXIT_OK


def _wait_inversions(engine: Engine) -> None:
    """Deliver the held alerts of the sampled findings, saying on stderr what is being waited for."""
    sampler = engine.inversion
    if sampler is None or not sampler.outstanding:
        return
    err = Console(file=sys.stderr, highlight=False)
    err.print(f"vecleak: scan done; waiting for {sampler.outstanding} inversion(s) to finish…")

    def progress(done: int, total: int) -> None:
        err.print(f"vecleak: inverted {done}/{total}")

    engine.wait_inversions(progress)


def run(args: argparse.Namespace) -> int:
    pipeline = Pipeline()
    exclude = list(args.exclude)
    if args.state:  # the state file (and SQLite's companions) in a scanned folder is not a log
        name = glob.escape(os.path.basename(args.state))
        exclude += [name + suffix for suffix in ("", "-wal", "-shm", "-journal")]
    source = FileSource(args.paths, include=args.include, exclude=exclude)
    try:
        state = scanstate.ScanState(args.state, args.state_ttl) if args.state else None
    except StateError as exc:  # it names the file
        error(f"--state {exc}")
        return EXIT_ERROR
    except (OSError, ValueError, sqlite3.Error) as exc:
        error(f"--state {args.state}: {exc}")
        return EXIT_ERROR
    try:
        return _run(args, pipeline, source, state)
    finally:
        if state is not None:
            state.close()


def _run(
    args: argparse.Namespace, pipeline: Pipeline, source: FileSource, state: scanstate.ScanState | None
) -> int:
    # Workers are forked first, while this process has no other thread: before the sinks (a spool
    # sink sends from a thread), the inversion worker and the progress bar exist.
    try:
        workers = parallel.open_pool(args.jobs, pipeline, source)
    except parallel.WorkerError as exc:
        error(str(exc))
        return EXIT_ERROR
    with workers as pool:
        prepared = prepare(args, pipeline)
        if isinstance(prepared, int):
            return prepared
        engine, fail_on = prepared
        try:
            if not args.no_progress and sys.stderr.isatty():
                with Progress(
                    "[progress.description]{task.description}",
                    BarColumn(),
                    DownloadColumn(),
                    TransferSpeedColumn(),
                    TimeRemainingColumn(),
                    console=Console(file=sys.stderr),
                    transient=True,
                ) as bar:
                    task = bar.add_task("scanning", total=None)

                    def tick(_record: Any = None) -> None:
                        bar.update(task, total=source.progress.total or None, completed=source.progress.done)

                    _scan(engine, source, pool, tick, state)
            else:
                _scan(engine, source, pool, None, state)
        except (OSError, parallel.WorkerError) as exc:
            error(str(exc))
            # The files finished before the failure keep their marks, once their alerts are out.
            try:
                engine.close(source.progress.files)
            except OSError as again:
                error(f"{again}; --state not updated")
                return EXIT_ERROR
            _commit(state)
            return EXIT_ERROR
    try:
        code = finish(args, engine, fail_on, source.progress.files, state.summary() if state else "")
    except OSError as exc:  # a sink could not finish delivering: the next run scans this again
        error(f"{exc}" + ("; --state not updated" if state is not None else ""))
        return EXIT_ERROR
    if state is not None:
        if not _commit(state):
            return EXIT_ERROR
        if (args.format or ("table" if sys.stdout.isatty() else "jsonl")) == "table":
            Console(file=sys.stderr).print(f"vecleak: {state.summary()}", highlight=False, soft_wrap=True)
    return code


def _commit(state: scanstate.ScanState | None) -> bool:
    """Write the marks; False (after saying why) when the state cannot be written, so that the run
    exits 1. The alerts are out by then: the next run reports these lines again."""
    if state is None:
        return True
    try:
        state.commit()
    except (OSError, sqlite3.Error) as exc:
        error(f"--state {state.store.path}: not updated: {exc}")
        return False
    return True


def _scan(
    engine: Engine,
    source: FileSource,
    pool: parallel.Pool | None,
    tick: Callable[[], None] | None,
    state: scanstate.ScanState | None = None,
) -> None:
    if pool is None:
        items = source.records() if state is None else scanstate.records(source, state)
        engine.run(items, on_record=None if tick is None else lambda _record: tick())
    else:
        pool.scan(engine, source, tick, state)
