"""``vecleak watch``: the sidecar daemon. Tail → analyse → deliver → checkpoint, on bounded queues.

Threads and queues::

    tailer ──chunks──▶ [analysis queue, bounded by bytes] ──▶ analyser ──▶ [sink queue, bounded]
                                                                   │              │
                                                       (sampled)   ▼              ▼
                                                 [enrich queue] ─▶ enricher ──▶ deliverer ──▶ sinks
                                                                                   │
                                                                       state DB: alert ids + offsets

Why this shape:

* Never drop, never block forever on memory: both queues are bounded; when one is full the stage
  before it waits, and the tailer simply stops reading — the bytes stay in the log file, which is the
  only buffer that is free and durable.
* At least once: a file offset is committed only after the alerts for the bytes before it have been
  handed to every sink. A crash replays from the last commit; replayed alerts carry the same
  ``event.id`` (derived from the finding fingerprint) and ids already delivered are suppressed here
  (persisted in the state DB), so a replay re-sends at most the alerts of the one batch in flight.
* Inversion is slow (a model forward pass): it runs on its own thread with its own small queue and a
  rate limit, samples findings, and its result follows as an update of the same alert id
  (``event.action: enriched``). A full enrich queue skips the sample; it never delays detection.
"""

from __future__ import annotations

import collections
import contextlib
import faulthandler
import importlib
import json
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import orjson
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from scanner.ecs import alert_to_ecs, now_iso
from scanner.engine import Engine
from scanner.model import Alert, Diagnostic, Finding, Record
from scanner.pipeline import Pipeline
from scanner.rules import RuleError, load_rules
from scanner.sinks import open_sink
from scanner.sources.tail import Chunk, Tailer
from scanner.state import StateStore

log = logging.getLogger("vecleak.watch")

NS_FILES = "watch.files"
NS_ALERTS = "watch.alerts"


# -- configuration --------------------------------------------------------------------------------


@dataclass
class WatchConfig:
    """Every setting, from (lowest first) defaults, the YAML file, VECLEAK_* env vars, then flags."""

    paths: list[str] = field(default_factory=list)
    state: str = "vecleak-state.db"
    output: list[str] = field(default_factory=lambda: ["jsonl:-"])
    rules: list[str] = field(default_factory=list)
    listen: str | None = None
    poll: bool = False  # polling only, no filesystem events (network filesystems)
    poll_interval: float = 0.25
    flush_partial_after: float = 5.0
    rotate_wait: float = 2.0
    read_from: str = "beginning"
    block_size: int = 1024 * 1024
    max_record: int = 8 * 1024 * 1024
    queue_bytes: int = 16 * 1024 * 1024
    sink_queue: int = 64
    enricher: str | None = None  # "module:factory"; default: scanner.inversion if importable
    invert_sample: float = 0.1
    invert_rate: float = 1.0  # inversions per second, at most
    invert_queue: int = 16
    invert_budget: int | None = None  # candidates re-embedded per vector; None: the inverter's default
    invert_first_guess: bool = False  # also repair the trained decoder's guess where a search is stuck
    dedup_ttl_days: float = 30.0
    shutdown_timeout: float = 10.0
    log_level: str = "info"


_LISTS = {"paths", "output", "rules"}


def load_config(
    path: str | None, overrides: dict[str, Any], env: dict[str, str] | None = None
) -> WatchConfig:
    """Merge the layers; unknown keys in the file are an error (a typo must not be silently ignored)."""
    env = os.environ if env is None else env
    merged: dict[str, Any] = {}
    names = {f.name: f for f in fields(WatchConfig)}
    if path:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh) or {}
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: expected a mapping of settings")
        for key, value in doc.items():
            name = str(key).replace("-", "_")
            if name not in names:
                raise ValueError(f"{path}: unknown setting {key!r}")
            merged[name] = value
    for name in names:
        raw = env.get(f"VECLEAK_{name.upper()}")
        if raw is not None:
            merged[name] = _coerce(name, raw)
    for name, value in overrides.items():
        if value is not None and value != [] and name in names:
            merged[name] = value
    cfg = WatchConfig(**merged)
    for name in _LISTS:
        value = getattr(cfg, name)
        if isinstance(value, str):
            setattr(cfg, name, [value])
    if cfg.read_from not in ("beginning", "end"):
        raise ValueError(f"read_from must be 'beginning' or 'end', not {cfg.read_from!r}")
    return cfg


def _coerce(name: str, raw: str) -> Any:
    default = WatchConfig.__dataclass_fields__[name]
    if name in _LISTS:
        return [p for p in (s.strip() for s in raw.split(",")) if p]
    kind = default.type
    if kind == "bool":
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if kind in ("int", "int | None"):
        return int(raw)
    if kind == "float":
        return float(raw)
    return raw


# -- structured log -------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line. Only counts, paths, ids and kinds are logged — never raw vectors."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "@timestamp": now_iso(),
            "log.level": record.levelname.lower(),
            "message": record.getMessage(),
            "log.logger": record.name,
        }
        extra = getattr(record, "fields", None)
        if extra:
            doc.update(extra)
        if record.exc_info:
            doc["error.type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            doc["error.message"] = str(record.exc_info[1])
        return json.dumps(doc, default=str)


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("vecleak")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def _log(level: int, message: str, **fields_: Any) -> None:
    log.log(level, message, extra={"fields": fields_})


# -- inversion hook -------------------------------------------------------------------------------


class Enricher(Protocol):
    """Turns a finding into inversion fields (``text_preview``, ``similarity`` …) or None.

    ``scanner.inversion`` provides one through ``make_enricher()``; any ``module:factory`` works.
    Fields named ``text_clear`` are never rendered (see :func:`scanner.ecs.alert_to_ecs`).
    """

    def enrich(self, finding: Finding) -> dict[str, Any] | None: ...


def load_enricher(spec: str | None, budget: int | None = None, first_guess: bool = False) -> Enricher | None:
    """The configured enricher, or ``scanner.inversion``'s if that extra is installed, else None."""
    module_name, _, attr = (spec or "scanner.inversion:make_enricher").partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if spec:
            raise ValueError(f"enricher {spec!r}: {exc}") from exc
        return None
    factory = getattr(module, attr or "make_enricher", None)
    if factory is None:
        if spec:
            raise ValueError(f"enricher {spec!r}: no {attr or 'make_enricher'} in {module_name}")
        return None
    # Only the options that are set: a custom factory need not know them all.
    options: dict[str, Any] = {"budget": budget} if budget is not None else {}
    if first_guess:
        options["first_guess"] = True
    return factory(**options)


class _RateLimit:
    """Token bucket: ``rate`` per second, bursts of one."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next = 0.0

    def wait(self, stop: threading.Event) -> bool:
        delay = self.next - time.monotonic()
        if delay > 0 and stop.wait(delay):
            return False
        self.next = max(self.next, time.monotonic()) + self.interval
        return True


# -- queues ---------------------------------------------------------------------------------------


class ByteQueue:
    """FIFO bounded by total bytes (one oversized item is admitted when the queue is empty)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: collections.deque[tuple[Any, int]] = collections.deque()
        self._bytes = 0
        self._cond = threading.Condition()

    def put(self, item: Any, nbytes: int, timeout: float) -> bool:
        with self._cond:
            if not self._cond.wait_for(
                lambda: not self._items or self._bytes + nbytes <= self.max_bytes, timeout
            ):
                return False
            self._items.append((item, nbytes))
            self._bytes += nbytes
            self._cond.notify_all()
            return True

    def get(self, timeout: float) -> Any | None:
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._items), timeout):
                return None
            item, nbytes = self._items.popleft()
            self._bytes -= nbytes
            self._cond.notify_all()
            return item

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes


@dataclass(slots=True)
class _Analysed:
    chunk: Chunk
    alerts: list[Alert]


@dataclass(slots=True)
class _Update:
    alert: Alert
    doc: dict[str, Any]
    new: bool = False  # a new alert that only the inversion made fire (a pii or text_regex rule)


# -- metrics --------------------------------------------------------------------------------------


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.lines = Counter("vecleak_lines", "Log lines scanned", registry=r)
        self.bytes = Counter("vecleak_bytes", "Log bytes scanned", registry=r)
        self.findings = Counter("vecleak_findings", "Embeddings found", registry=r)
        self.alerts = Counter("vecleak_alerts", "Alerts delivered to the sinks", registry=r)
        self.replayed = Counter(
            "vecleak_alerts_suppressed", "Replayed alerts not re-sent (id already delivered)", registry=r
        )
        self.enriched = Counter("vecleak_enriched", "Inversion updates delivered", registry=r)
        self.enrich_skipped = Counter(
            "vecleak_enrich_skipped", "Samples not inverted (queue full)", registry=r
        )
        self.errors = Counter("vecleak_errors", "Errors by kind", ["kind"], registry=r)
        self.diagnostics = Counter("vecleak_diagnostics", "Input problems by kind", ["kind"], registry=r)
        self.queue_depth = Gauge("vecleak_queue_depth", "Items waiting per queue", ["queue"], registry=r)
        self.queue_bytes = Gauge("vecleak_queue_bytes", "Bytes waiting in the analysis queue", registry=r)
        self.lag_bytes = Gauge("vecleak_lag_bytes", "Bytes in followed files not yet committed", registry=r)
        self.lag_seconds = Gauge(
            "vecleak_lag_seconds", "Age of the oldest read but undelivered chunk", registry=r
        )
        self.files = Gauge("vecleak_files_followed", "Files open", registry=r)
        self.sink_up = Gauge("vecleak_sink_up", "1 when the last delivery succeeded", registry=r)
        self.latency = Histogram(
            "vecleak_read_to_alert_seconds",
            "From reading the bytes to handing their alert to the sinks",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
            registry=r,
        )


# -- the daemon -----------------------------------------------------------------------------------


class _SinkSlot:
    """One output, opened lazily and reopened after a failure (a missing directory, a dead server)."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.sink: Any = None
        self.summary_sent = False

    def write(self, alert: Alert, doc: dict[str, Any]) -> None:
        if self.sink is None:
            self.sink = open_sink(self.spec, diagnostics=False)
        try:
            writer = getattr(self.sink, "write_document", None)
            if writer is not None:
                writer(doc)
            else:
                self.sink.send(alert)
        except BaseException:
            self.drop()
            raise

    def drop(self) -> None:
        sink, self.sink = self.sink, None
        if sink is not None:
            with contextlib.suppress(Exception):
                sink.close({})

    def close(self, summary: dict[str, Any]) -> None:
        if self.sink is not None:
            with contextlib.suppress(Exception):
                self.sink.close(summary)
            self.sink = None


class Daemon:
    def __init__(self, cfg: WatchConfig) -> None:
        self.cfg = cfg
        for spec in cfg.output:
            open_sink_check(spec)
        self.rules = load_rules(cfg.rules or None)
        self.state = StateStore(cfg.state)
        self.metrics = Metrics()
        self.engine = Engine(Pipeline(), self.rules, [])
        self.slots = [_SinkSlot(spec) for spec in cfg.output]
        self.analysis_q = ByteQueue(cfg.queue_bytes)
        self.sink_q: queue.Queue[_Analysed | _Update] = queue.Queue(maxsize=cfg.sink_queue)
        self.enrich_q: queue.Queue[Alert] = queue.Queue(maxsize=cfg.invert_queue)
        self.enricher = load_enricher(cfg.enricher, cfg.invert_budget, cfg.invert_first_guess)
        self.stop_reading = threading.Event()
        self.stop_all = threading.Event()
        self.reload_requested = threading.Event()
        self._inflight: collections.OrderedDict[int, float] = collections.OrderedDict()
        self._inflight_lock = threading.Lock()
        self._delivered_cache: set[str] = set()
        self._threads: dict[str, threading.Thread] = {}
        self._observer: Any = None
        self._http: ThreadingHTTPServer | None = None
        self.tailer = Tailer(
            cfg.paths,
            self._emit,
            self.state.items(NS_FILES),
            poll_interval=cfg.poll_interval,
            flush_partial_after=cfg.flush_partial_after,
            rotate_wait=cfg.rotate_wait,
            read_from=cfg.read_from,
            block_size=cfg.block_size,
            max_record=cfg.max_record,
            on_event=lambda event, f: _log(logging.INFO, event, **f),
        )
        m = self.metrics
        m.queue_depth.labels("analysis").set_function(lambda: len(self.analysis_q))
        m.queue_depth.labels("sink").set_function(self.sink_q.qsize)
        m.queue_depth.labels("enrich").set_function(self.enrich_q.qsize)
        m.queue_bytes.set_function(lambda: self.analysis_q.nbytes)
        m.lag_bytes.set_function(self.tailer.lag_bytes)
        m.lag_seconds.set_function(self._lag_seconds)
        m.files.set_function(lambda: len(self.tailer.followers))
        m.sink_up.set(1)

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        pruned = self.state.prune_ids(NS_ALERTS, self.cfg.dedup_ttl_days * 86400)
        self._recover_written_ids()
        _log(
            logging.INFO,
            "starting",
            paths=self.cfg.paths,
            outputs=[s.partition(":")[0] for s in self.cfg.output],
            rules=len(self.rules),
            inversion=self.enricher is not None,
            pruned_ids=pruned,
        )
        if self.cfg.listen:
            self._serve_http(self.cfg.listen)
        self._spawn("tailer", lambda: self.tailer.run(self.stop_reading))
        self._spawn("analyser", self._analyse_loop)
        self._spawn("deliverer", self._deliver_loop)
        if self.enricher is not None:
            self._spawn("enricher", self._enrich_loop)
        if not self.cfg.poll:
            self._watch_events()

    def _recover_written_ids(self, tail_bytes: int = 4 * 1024 * 1024) -> None:
        """Close the crash window for file outputs: a kill -9 after a batch reached a jsonl file but
        before its ids were committed would resend them, so take the ids already in the file's tail."""
        found: list[str] = []
        for spec in self.cfg.output:
            scheme, _, target = spec.partition(":")
            if scheme not in ("jsonl", "ecs") or target in ("", "-") or not os.path.isfile(target):
                continue
            with open(target, "rb") as fh:
                fh.seek(max(0, os.fstat(fh.fileno()).st_size - tail_bytes))
                for line in fh.read().splitlines():
                    try:
                        event = orjson.loads(line).get("event", {})
                    except (orjson.JSONDecodeError, AttributeError):
                        continue  # the partial first line of the tail, or a torn last write
                    if event.get("kind") == "alert" and event.get("action") != "enriched" and event.get("id"):
                        found.append(str(event["id"]))
        if found:
            with self.state.transaction():
                self.state.add_ids(NS_ALERTS, found)

    def run_forever(self) -> int:
        """Install signal handlers, start, block until SIGTERM/SIGINT, then drain and exit 0."""
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGHUP, lambda *_: self.reload_requested.set())
        # SIGUSR1 dumps every thread's stack to stderr: how to see where a stuck daemon waits.
        faulthandler.register(signal.SIGUSR1, all_threads=True)
        self.start()
        while not stop.wait(0.2):
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.reload_rules()
            dead = [n for n, t in self._threads.items() if not t.is_alive()]
            if dead:
                _log(logging.ERROR, "worker died; exiting", threads=dead)
                self.shutdown()
                return 1
        return self.shutdown()

    def reload_rules(self) -> bool:
        try:
            rules = load_rules(self.cfg.rules or None)
        except (RuleError, OSError, ValueError) as exc:
            self.metrics.errors.labels("rules-reload").inc()
            problems = getattr(exc, "problems", [str(exc)])
            _log(logging.ERROR, "rules reload failed; keeping the old rules", problems=problems)
            return False
        self.rules = rules
        self.engine.rules = rules  # one reference swap: the analyser sees old or new, never half
        _log(logging.INFO, "rules reloaded", rules=len(rules))
        return True

    def shutdown(self) -> int:
        """Stop reading, let the in-flight chunks reach the sinks and commit, then close."""
        _log(logging.INFO, "stopping")
        self.stop_reading.set()
        if self._observer is not None:
            with contextlib.suppress(Exception):
                self._observer.stop()
        deadline = time.monotonic() + self.cfg.shutdown_timeout
        for name in ("tailer", "analyser", "deliverer"):
            t = self._threads.get(name)
            if t is not None:
                t.join(max(0.1, deadline - time.monotonic()))
        self.stop_all.set()
        for t in self._threads.values():
            t.join(2)
        clean = not any(t.is_alive() for t in self._threads.values())
        summary = self.engine.stats.as_dict(len(self.tailer.followers))
        for slot in self.slots:
            slot.close(summary)
        if self._http is not None:
            self._http.shutdown()
        self.state.close()
        _log(logging.INFO, "stopped", clean=clean, alerts=int(self.metrics.alerts._value.get()))
        return 0 if clean else 1

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                target()
            except Exception:
                self.metrics.errors.labels(f"thread-{name}").inc()
                log.exception("worker failed", extra={"fields": {"thread": name}})
                raise

        t = threading.Thread(target=guarded, name=f"vecleak-{name}", daemon=True)
        self._threads[name] = t
        t.start()

    # -- tailer → analyser ------------------------------------------------------------------------

    def _emit(self, chunk: Chunk) -> bool:
        nbytes = max(chunk.nbytes, 1)
        with self._inflight_lock:
            self._inflight[id(chunk)] = chunk.read_at
        while not self.analysis_q.put(chunk, nbytes, timeout=0.2):
            if self.stop_reading.is_set():
                with self._inflight_lock:
                    self._inflight.pop(id(chunk), None)
                return False
        return True

    def _lag_seconds(self) -> float:
        with self._inflight_lock:
            if not self._inflight:
                return 0.0
            oldest = next(iter(self._inflight.values()))
        return max(0.0, time.monotonic() - oldest)

    def _analyse_loop(self) -> None:
        tailer = self._threads["tailer"]
        while True:
            chunk = self.analysis_q.get(timeout=0.2)
            if chunk is None:
                if self.stop_reading.is_set() and not tailer.is_alive() and not len(self.analysis_q):
                    return
                if self.stop_all.is_set():
                    return
                continue
            alerts: list[Alert] = []
            for item in chunk.records:
                if isinstance(item, Diagnostic):
                    self._diagnostic(item)
                    continue
                alerts.extend(self._scan(item))
            self.metrics.lines.inc(chunk.lines)
            self.metrics.bytes.inc(chunk.nbytes)
            if len(self.engine.seen) > 200_000:
                self.engine.seen.clear()  # the state DB still suppresses what was delivered
            if not self._put_sink(_Analysed(chunk, alerts)):
                return

    def _scan(self, record: Record) -> list[Alert]:
        stats = self.engine.stats
        before_diag = collections.Counter(stats.diagnostics)
        before_find = stats.findings
        alerts = self.engine.feed(record)
        self.metrics.findings.inc(stats.findings - before_find)
        if stats.diagnostics != before_diag:
            for kind, n in (stats.diagnostics - before_diag).items():
                self.metrics.diagnostics.labels(kind).inc(n)
        return alerts

    def _diagnostic(self, diag: Diagnostic) -> None:
        self.engine.report(diag)
        self.metrics.diagnostics.labels(diag.kind).inc()
        _log(logging.WARNING, "input problem", kind=diag.kind, path=diag.source, line=diag.line)

    def _put_sink(self, item: _Analysed | _Update) -> bool:
        while True:
            try:
                self.sink_q.put(item, timeout=0.2)
                return True
            except queue.Full:
                if self.stop_all.is_set():
                    return False

    # -- deliverer: sinks, then commit ------------------------------------------------------------

    def _deliver_loop(self) -> None:
        analyser = self._threads["analyser"]
        while True:
            try:
                first = self.sink_q.get(timeout=0.2)
            except queue.Empty:
                if self.stop_all.is_set() or (
                    self.stop_reading.is_set() and not analyser.is_alive() and self.sink_q.empty()
                ):
                    return
                continue
            batch = [first]
            while len(batch) < 256:
                try:
                    batch.append(self.sink_q.get_nowait())
                except queue.Empty:
                    break
            if not self._deliver_batch(batch):
                return

    def _deliver_batch(self, batch: list[_Analysed | _Update]) -> bool:
        delivered: list[str] = []
        checkpoints: dict[str, dict[str, Any]] = {}
        forget: set[str] = set()
        for item in batch:
            if isinstance(item, _Update):
                aid = item.alert.event_id
                if item.new and (aid in self._delivered_cache or self.state.has_id(NS_ALERTS, aid)):
                    self.metrics.replayed.inc()
                    continue
                if not self._deliver(item.alert, item.doc):
                    return False
                if item.new:
                    self._delivered_cache.add(aid)
                    delivered.append(aid)
                    self.metrics.alerts.inc()
                else:
                    self.metrics.enriched.inc()
                continue
            for alert in item.alerts:
                aid = alert.event_id
                if aid in self._delivered_cache or self.state.has_id(NS_ALERTS, aid):
                    self.metrics.replayed.inc()
                    continue
                doc = alert_to_ecs(alert)
                doc["event"]["created"] = now_iso()
                if not self._deliver(alert, doc):
                    return False
                self._delivered_cache.add(aid)
                delivered.append(aid)
                self.metrics.alerts.inc()
                self.metrics.latency.observe(time.monotonic() - item.chunk.read_at)
                self._maybe_enrich(alert)
            chunk = item.chunk
            if chunk.forget:
                forget.add(chunk.key)
                checkpoints.pop(chunk.key, None)
            elif chunk.checkpoint:
                checkpoints[chunk.key] = chunk.checkpoint
                forget.discard(chunk.key)
        with self.state.transaction():
            self.state.add_ids(NS_ALERTS, delivered)
            for key, cp in checkpoints.items():
                self.state.put(NS_FILES, key, cp)
            for key in forget:
                self.state.delete(NS_FILES, key)
        if len(self._delivered_cache) > 100_000:
            self._delivered_cache.clear()
        for key, cp in checkpoints.items():
            if key in self.tailer.committed:
                self.tailer.committed[key] = int(cp["offset"])
        with self._inflight_lock:
            for item in batch:
                if isinstance(item, _Analysed):
                    self._inflight.pop(id(item.chunk), None)
        return True

    def _deliver(self, alert: Alert, doc: dict[str, Any]) -> bool:
        """Hand one document to every sink, retrying a failed one until it takes it (or we must stop)."""
        pending = list(self.slots)
        backoff = 0.05
        while pending:
            slot = pending[0]
            try:
                slot.write(alert, doc)
            except Exception as exc:
                self.metrics.errors.labels("sink").inc()
                self.metrics.sink_up.set(0)
                _log(
                    logging.WARNING,
                    "sink failed; retrying",
                    sink=slot.spec.partition(":")[0],
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in=backoff,
                )
                if self.stop_all.wait(backoff):
                    return False
                backoff = min(backoff * 2, 2.0)
                continue
            pending.pop(0)
            self.metrics.sink_up.set(1)
        return True

    # -- inversion --------------------------------------------------------------------------------

    def _maybe_enrich(self, alert: Alert) -> None:
        if self.enricher is None or self.cfg.invert_sample <= 0:
            return
        # Sample by id, not at random, so a replay samples the same alerts.
        if int(alert.event_id[:8], 16) / 0xFFFFFFFF >= self.cfg.invert_sample:
            return
        try:
            self.enrich_q.put_nowait(alert)
        except queue.Full:
            self.metrics.enrich_skipped.inc()

    def _enrich_loop(self) -> None:
        limit = _RateLimit(self.cfg.invert_rate)
        assert self.enricher is not None
        while not self.stop_reading.is_set():
            try:
                alert = self.enrich_q.get(timeout=0.2)
            except queue.Empty:
                continue
            if not limit.wait(self.stop_reading):
                return
            try:
                fields_ = self.enricher.enrich(alert.finding)
            except Exception as exc:
                self.metrics.errors.labels("enrich").inc()
                _log(logging.WARNING, "inversion failed", error=type(exc).__name__, id=alert.event_id)
                continue
            if not fields_:
                continue
            alert.finding.inversion = dict(fields_)
            doc = alert_to_ecs(alert)
            doc["event"]["created"] = now_iso()
            doc["event"]["action"] = "enriched"
            if not self._put_sink(_Update(alert, doc)):
                return
            # Rules on the inverted text (pii, text_regex) could not fire at detection time.
            for fired in self.rules.evaluate(alert.finding):
                if fired.rule_id == alert.rule_id or not self._needs_inversion(fired.rule_id):
                    continue
                doc = alert_to_ecs(fired)
                doc["event"]["created"] = now_iso()
                if not self._put_sink(_Update(fired, doc, new=True)):
                    return

    def _needs_inversion(self, rule_id: str) -> bool:
        return any(rule.id == rule_id and rule.needs_inversion for rule in self.rules.rules)

    # -- filesystem events and HTTP ---------------------------------------------------------------

    def _watch_events(self) -> None:
        """Wake the tailer on inotify (or the platform's) events; polling still runs as a fallback."""
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            return
        tailer = self.tailer

        class Wake(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                tailer.wake(rediscover=event.event_type in ("created", "moved", "deleted"))

        observer = Observer()
        folders: dict[str, bool] = {}
        for pattern in self.cfg.paths:
            root = _glob_root(pattern)
            # A wildcard above the file name (/var/log/pods/*/*/*.log) needs the subtree watched.
            deep = root != os.path.dirname(os.path.abspath(pattern))
            folders[root] = folders.get(root, False) or deep
        watched = 0
        for folder, recursive in folders.items():
            if os.path.isdir(folder):
                with contextlib.suppress(OSError):
                    observer.schedule(Wake(), folder, recursive=recursive)
                    watched += 1
        if not watched:
            return
        try:
            observer.start()
        except Exception as exc:
            self.metrics.errors.labels("watcher").inc()
            _log(logging.WARNING, "filesystem events unavailable; polling", error=str(exc))
            return
        self._observer = observer

    def _serve_http(self, listen: str) -> None:
        host, _, port = listen.rpartition(":")
        daemon = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                if self.path.startswith("/metrics"):
                    body = generate_latest(daemon.metrics.registry)
                    self._reply(200, body, CONTENT_TYPE_LATEST)
                elif self.path.startswith("/healthz"):
                    code, doc = daemon.health()
                    self._reply(code, json.dumps(doc).encode(), "application/json")
                else:
                    self._reply(404, b"not found\n", "text/plain")

            def _reply(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, name="vecleak-http", daemon=True).start()
        _log(logging.INFO, "listening", address=f"{host}:{self._http.server_address[1]}")

    def health(self) -> tuple[int, dict[str, Any]]:
        """200 while every worker runs (a sink outage is reported, not fatal: we wait it out)."""
        dead = [n for n, t in self._threads.items() if not t.is_alive()]
        doc = {
            "status": "ok" if not dead else "failed",
            "dead_workers": dead,
            "sink_up": bool(self.metrics.sink_up._value.get()),
            "files": len(self.tailer.followers),
            "lag_bytes": self.tailer.lag_bytes(),
            "lag_seconds": round(self._lag_seconds(), 3),
        }
        return (200 if not dead else 503), doc


def open_sink_check(spec: str) -> None:
    """Validate the SINK:TARGET syntax now, without opening it (the target may not exist yet)."""
    from scanner.sinks import SCHEMES

    scheme, sep, _ = spec.partition(":")
    if scheme.startswith("syslog+"):
        return
    if not sep or scheme not in SCHEMES:
        raise ValueError(
            f"unknown output {spec!r}: expected SINK:TARGET with SINK one of {', '.join(sorted(SCHEMES))}"
        )


def _glob_root(pattern: str) -> str:
    """The deepest folder of a glob with no wildcard in it: what the filesystem watcher observes."""
    parts = os.path.abspath(pattern).split(os.sep)
    root: list[str] = []
    for part in parts[:-1]:
        if any(c in part for c in "*?["):
            break
        root.append(part)
    return os.sep.join(root) or os.sep
