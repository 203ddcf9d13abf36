"""The one canonical rendering of an alert: an ECS-shaped JSON object.

Every other output (OCSF, CEF, SARIF, HEC, webhook, the Elasticsearch alert index) starts from this
dict, so a field is named and redacted in exactly one place. Raw vectors never appear: the vector is
represented by its hash, shape, encoding and a masked preview.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from scanner import __version__
from scanner.model import SCHEMA_VERSION, Alert, Diagnostic, Finding

_now: tuple[int, str] = (-1, "")


def now_iso() -> str:
    """The current UTC time to the millisecond; formatted once per millisecond (a scan stamps
    thousands of alerts in each)."""
    global _now
    ms = time.time_ns() // 1_000_000
    cached = _now
    if cached[0] != ms:
        stamp = dt.datetime.fromtimestamp(ms // 1000, dt.UTC).replace(microsecond=ms % 1000 * 1000)
        cached = _now = (ms, stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
    return cached[1]


def alert_to_ecs(alert: Alert, created: str | None = None, reveal: bool = False) -> dict[str, Any]:
    """``reveal`` puts the clear inverted text and PII in ``vecleak.inversion``; only an explicit
    ``--reveal`` to stdout sets it. Without it, ``text_clear`` never leaves the process."""
    f = alert.finding
    c = f.candidate
    top = f.model
    location: dict[str, Any] = {"offset": f.offset}
    es_location = f.record_context.get("es")
    if es_location:
        location.update(es_location)
    else:
        location["line"] = f.line
    if c.json_path:
        location["json_path"] = c.json_path
    doc: dict[str, Any] = {
        "@timestamp": created or now_iso(),
        "event": {
            "kind": "alert",
            "category": ["intrusion_detection"],
            "type": ["info"],
            "module": "vecleak",
            "dataset": "vecleak.finding",
            "id": alert.event_id,
            "severity": alert.level.severity,
            "risk_score": float(alert.level.severity),
        },
        "rule": {"id": alert.rule_id, "name": alert.rule_title, "ruleset": "vecleak"},
        "tags": list(alert.tags),
        "log": {"file": {"path": f.source.display}}
        if f.source.kind in ("file", "stdin", "tail", "trace")
        else {},
        "vecleak": {
            "schema_version": SCHEMA_VERSION,
            "level": alert.level.name,
            "source": {"kind": f.source.kind, "name": f.source.display},
            "location": location,
            "finding": {
                "id": f.finding_id,
                "kind": f.kind,
                "fingerprint": alert.fingerprint,
                "count": alert.count,
            },
            "vector": _vector_doc(f),
            "classifier": {"score": f.score, "reasons": list(f.reasons)},
            "fingerprint": {
                "model": top.model if top else None,
                "confidence": round(top.confidence, 3) if top else 0.0,
                "confirmed": bool(top and top.confirmed),
                "truncated_from": top.truncated_from if top else None,
                "reasons": list(top.reasons) if top else [],
                "candidates": [
                    {"model": g.model, "confidence": round(g.confidence, 3)} for g in f.fingerprint[:5]
                ],
            },
        },
        "observer": {"vendor": "vecleak", "product": "vecleak", "version": __version__, "type": "dlp"},
    }
    labels = {k: v for k, v in f.source.labels.items() if isinstance(v, str | int | float | bool)}
    if labels:
        doc["labels"] = labels
    service = f.record_context.get("service.name") or f.source.labels.get("service.name")
    if service:
        doc["service"] = {"name": service}
    span = f.record_context.get("span")
    if span:
        doc["vecleak"]["span"] = span
    if alert.group is not None:
        _add_group(doc, alert)
    if f.inversion:
        inversion = {k: v for k, v in f.inversion.items() if k != "text_clear"}
        clear = f.inversion.get("text_clear")
        if reveal and clear:
            from scanner.pii import find_pii

            inversion["text"] = clear
            inversion["pii"] = [item.to_dict(reveal=True) for item in find_pii(clear)]
            inversion["revealed"] = True
        doc["vecleak"]["inversion"] = inversion
    return doc


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _add_group(doc: dict[str, Any], alert: Alert) -> None:
    """A roll-up (scanner.noise): the window it covers and what was folded into it.

    Location, vector and fingerprint fields describe the first folded alert, as an example.
    """
    g = alert.group
    assert g is not None
    doc["event"]["action"] = "grouped"
    doc["event"]["start"] = _iso(g.start)
    doc["event"]["end"] = _iso(g.end)
    doc["vecleak"]["group"] = {
        "source": doc["vecleak"]["source"]["name"],
        "model": g.model,
        "rule": g.rule_id,
        "window_seconds": round(g.end - g.start, 3),
        "alerts": g.alerts,
        "distinct_vectors": g.distinct_vectors,
        "rate_limited": g.rate_limited,
        "first_event_id": g.first_event_id,
        "sample_sha256": list(g.sample_sha256),
    }


def _vector_doc(f: Finding) -> dict[str, Any]:
    """The vector's own fields, the same for every alert of the finding: built once, copied after."""
    cached = f._memo.get("ecs.vector")
    if cached is None:
        c = f.candidate
        summary = c.summarize()
        cached = f._memo["ecs.vector"] = {
            "dim": c.dim,
            "encoding": c.encoding,
            "truncated": bool(c.truncated),
            "sha256": summary.sha256,
            "precision": c.precision,
            "norm": summary.norm,
            "key": c.key,
            "preview": summary.preview,
        }
    return dict(cached)


def diagnostic_to_ecs(diag: Diagnostic) -> dict[str, Any]:
    """A separate record kind, so consumers can count findings by ``event.kind == "alert"``."""
    doc: dict[str, Any] = {
        "@timestamp": now_iso(),
        "event": {
            "kind": "pipeline_error",
            "module": "vecleak",
            "dataset": "vecleak.diagnostic",
            "action": diag.kind,
        },
        "error": {"type": diag.kind, "message": diag.message},
        "vecleak": {
            "schema_version": SCHEMA_VERSION,
            "diagnostic": {"kind": diag.kind, "line": diag.line, "offset": diag.offset},
        },
    }
    doc["log"] = {"file": {"path": diag.source}}
    return doc
