"""``vecleak es scan``: walk Elasticsearch/OpenSearch indexes and report where embeddings sit.

A scheduled job (a Kubernetes CronJob or Indexed Job) runs this with ``--state``: each run reads only
documents newer than the last one's high-water mark. ``--slices N`` splits an index between N local
processes; ``--slice-id I --slices N`` (I defaulting from ``JOB_COMPLETION_INDEX``) makes this process
one of N pods sharing the walk.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from rich.console import Console

import detectors
from scanner.cli import EXIT_ERROR, EXIT_USAGE
from scanner.commands.scan import add_invert_options, add_output_options, finish, prepare
from scanner.model import Diagnostic, Record, SourceRef
from scanner.pipeline import Pipeline, ScanResult
from scanner.sources.elasticsearch import (
    MAPPED_VECTORS,
    PAGE_SIZE,
    Cluster,
    EsAuthError,
    EsError,
    EsSource,
    IndexInfo,
    StateDB,
    WalkStats,
    parse_duration,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("es", help="scan Elasticsearch / OpenSearch indexes")
    esub = p.add_subparsers(dest="es_command", metavar="ACTION", required=True)
    s = esub.add_parser(
        "scan",
        help="walk indexes and report vectors in documents and vector fields",
        description=(
            "Walk the indexes matching PATTERN (PIT + search_after, or scroll) and report embeddings: "
            "mapped dense_vector/knn_vector fields, and vectors hidden in text, keyword and object fields. "
            "Credentials come from VECLEAK_ES_API_KEY or VECLEAK_ES_USERNAME/VECLEAK_ES_PASSWORD "
            "(or their *_FILE variants), never from flags."
        ),
    )
    s.add_argument(
        "--url", default=os.environ.get("VECLEAK_ES_URL"), help="server URL (default: $VECLEAK_ES_URL)"
    )
    s.add_argument("--index", required=True, metavar="PATTERN", help="index pattern, e.g. 'logs-*,rag-*'")
    when = s.add_mutually_exclusive_group()
    when.add_argument("--since", metavar="DURATION", help="only documents newer than this (15m, 24h, 7d)")
    when.add_argument("--query", metavar="JSON", help="a query DSL object restricting the walk")
    s.add_argument("--slices", type=int, default=1, metavar="N", help="split each index into N slices")
    s.add_argument(
        "--slice-id",
        type=int,
        default=_env_int("JOB_COMPLETION_INDEX"),
        metavar="I",
        help="walk only slice I of N (default: $JOB_COMPLETION_INDEX); without it, N local processes walk all",
    )
    s.add_argument("--sample", type=int, metavar="N", help="stop after N documents per index (and slice)")
    s.add_argument("--state", metavar="PATH", help="SQLite state file of high-water marks (created 0600)")
    s.add_argument("--ca-cert", metavar="PATH", help="CA bundle that signed the server certificate")
    s.add_argument(
        "--timestamp-field", default="@timestamp", metavar="FIELD", help="date field for --since/--state"
    )
    s.add_argument(
        "--page-size",
        type=int,
        default=PAGE_SIZE,
        metavar="N",
        help=f"hits per request (default {PAGE_SIZE})",
    )
    s.add_argument("--scroll", action="store_true", help="use scroll even where point-in-time is available")
    s.add_argument(
        "--mappings", action="store_true", help="print each index's vector-field summary on stderr as JSON"
    )
    add_output_options(s)
    add_invert_options(s)
    s.set_defaults(func=run)


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() else None


@dataclass
class _Plan:
    url: str
    ca_cert: str | None
    pattern: str
    query: dict[str, Any] | None
    since: str | None
    slices: int
    sample: int | None
    state: str | None
    timestamp_field: str
    page_size: int
    use_pit: bool | None


def _plan(args: argparse.Namespace) -> _Plan:
    if not args.url:
        raise ValueError("--url (or VECLEAK_ES_URL) is required")
    if args.slices < 1:
        raise ValueError("--slices must be at least 1")
    if args.slice_id is not None and not 0 <= args.slice_id < args.slices:
        raise ValueError(f"--slice-id {args.slice_id} is outside 0..{args.slices - 1}")
    query = None
    if args.query:
        try:
            query = orjson.loads(args.query)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"--query is not JSON: {exc}") from None
        if not isinstance(query, dict):
            raise ValueError("--query must be a JSON object (a query DSL clause)")
    return _Plan(
        url=args.url,
        ca_cert=args.ca_cert,
        pattern=args.index,
        query=query,
        since=parse_duration(args.since) if args.since else None,
        slices=args.slices,
        sample=args.sample,
        state=args.state,
        timestamp_field=args.timestamp_field,
        page_size=args.page_size,
        use_pit=False if args.scroll else None,
    )


def run(args: argparse.Namespace) -> int:
    err = Console(file=sys.stderr)
    try:
        plan = _plan(args)
    except ValueError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        return EXIT_USAGE
    prepared = prepare(args)
    if isinstance(prepared, int):
        return prepared
    engine, fail_on = prepared
    show_mappings = (
        (lambda info: err.print(orjson.dumps(info.summary()).decode(), highlight=False, soft_wrap=True))
        if args.mappings
        else None
    )
    stats = WalkStats()
    try:
        if plan.slices > 1 and args.slice_id is None:
            items = _parallel(plan, stats, show_mappings)
        else:
            items = _single(plan, args.slice_id, stats, show_mappings)
        engine.pipeline = _Replay()
        engine.run(items)
    except EsAuthError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        engine.close(0)
        return EXIT_ERROR
    except (EsError, OSError) as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        engine.close(0)
        return EXIT_ERROR
    err.print(
        f"vecleak es: {stats.docs:,} document(s) in {stats.indexes} index(es) walked"
        + (f", {stats.skipped_tie} already seen" if stats.skipped_tie else ""),
        highlight=False,
    )
    engine.stats.bytes = stats.bytes
    return finish(args, engine, fail_on, stats.indexes)


# The engine drives rules, dedup and sinks; detection already ran next to the walk (in this process
# or in a slice worker), so the engine's pipeline only hands back the result carried by each item.
class _Replay:
    def scan(self, record: Record) -> ScanResult:
        return record.context["result"]


def _carrier(result: ScanResult, nbytes: int) -> Record:
    # Findings keep the location context; the decoded candidates list is dropped before pickling.
    for f in result.findings:
        f.record_context = {k: v for k, v in f.record_context.items() if k != "candidates"}
    rec = Record(b"", SourceRef("es", "", ""), context={"result": result})
    rec.context["bytes"] = nbytes
    return rec


def _scan_slice(
    plan: _Plan, slice_id: int | None, stats: WalkStats, on_index: Any
) -> Iterator[Record | Diagnostic]:
    """Walk and detect; yields carriers of ScanResults (only those with something in them) and diagnostics."""
    cluster = Cluster.connect(plan.url, plan.ca_cert)
    state = StateDB(plan.state) if plan.state else None
    pipeline = Pipeline(detectors=(MAPPED_VECTORS, *detectors.REGISTRY))
    source = EsSource(
        cluster,
        plan.pattern,
        query=plan.query,
        since=plan.since,
        slice_id=slice_id,
        slices=plan.slices,
        sample=plan.sample,
        state=state,
        page_size=plan.page_size,
        timestamp_field=plan.timestamp_field,
        use_pit=plan.use_pit,
        stats=stats,
        on_index=on_index,
    )
    try:
        for item in source.records():
            if isinstance(item, Diagnostic):
                yield item
                continue
            result = pipeline.scan(item)
            if result.findings or result.diagnostics or result.rejected:
                yield _carrier(result, len(item.data))
    finally:
        cluster.close()
        if state is not None:
            state.close()


def _single(
    plan: _Plan, slice_id: int | None, stats: WalkStats, on_index: Any
) -> Iterator[Record | Diagnostic]:
    yield from _scan_slice(plan, slice_id, stats, on_index)


def _worker(plan: _Plan, slice_id: int, queue: Any, show_mappings: bool) -> None:
    stats = WalkStats()
    try:
        on_index = (lambda info: queue.put(("index", info))) if show_mappings and slice_id == 0 else None
        batch: list[Any] = []
        for item in _scan_slice(plan, slice_id, stats, on_index):
            batch.append(item)
            if len(batch) >= 64:
                queue.put(("items", batch))
                batch = []
        queue.put(("items", batch))
        queue.put(("done", stats))
    except EsAuthError as exc:
        queue.put(("auth", str(exc)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which exits non-zero
        queue.put(("error", f"slice {slice_id}: {type(exc).__name__}: {exc}"))


def _parallel(plan: _Plan, stats: WalkStats, on_index: Any) -> Iterator[Record | Diagnostic]:
    """N local processes, one slice each; their results funnel into this process's engine and sinks."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue(maxsize=256)
    procs = [
        ctx.Process(target=_worker, args=(plan, i, queue, on_index is not None), daemon=True)
        for i in range(plan.slices)
    ]
    for p in procs:
        p.start()
    running = len(procs)
    failure: Exception | None = None
    try:
        while running:
            kind, payload = queue.get()
            if kind == "items":
                yield from payload
            elif kind == "index" and on_index is not None:
                on_index(payload)
            elif kind == "done":
                running -= 1
                stats.docs += payload.docs
                stats.indexes = max(stats.indexes, payload.indexes)
                stats.skipped_tie += payload.skipped_tie
                stats.bytes += payload.bytes
            elif kind in ("auth", "error"):
                running -= 1
                failure = failure or (EsAuthError(payload) if kind == "auth" else EsError(payload))
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
    if failure is not None:
        raise failure


__all__ = ["register", "run", "IndexInfo"]
