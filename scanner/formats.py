"""Renderings of one alert for other SIEM dialects, each derived from :func:`alert_to_ecs`.

Starting from the ECS dict means a field is named and redacted in one place only: OCSF, CEF and
SARIF never look at the Finding, so they cannot leak more than the canonical rendering does.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from scanner import __version__
from scanner.ecs import alert_to_ecs
from scanner.model import Alert, Level

OCSF_VERSION = "1.4.0"
# OCSF severity_id: 1 Informational, 2 Low, 3 Medium, 4 High, 5 Critical.
_OCSF_SEVERITY = {Level.informational: 1, Level.low: 2, Level.medium: 3, Level.high: 4, Level.critical: 5}
_OCSF_SEVERITY_NAME = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
# CEF severity is 0-10.
_CEF_SEVERITY = {Level.informational: 1, Level.low: 3, Level.medium: 5, Level.high: 8, Level.critical: 10}
_SARIF_LEVEL = {
    Level.informational: "note",
    Level.low: "note",
    Level.medium: "warning",
    Level.high: "error",
    Level.critical: "error",
}


def _epoch_ms(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


# --- OCSF 1.x Data Security Finding (class_uid 2006) ---------------------------------------------


def alert_to_ocsf(alert: Alert, ecs: dict[str, Any] | None = None) -> dict[str, Any]:
    """An OCSF Data Security Finding: category Findings (2), class 2006, activity Create (1)."""
    doc = ecs or alert_to_ecs(alert)
    v = doc["vecleak"]
    severity_id = _OCSF_SEVERITY[alert.level]
    pii = bool(v.get("inversion", {}).get("pii"))
    out: dict[str, Any] = {
        "activity_id": 1,
        "activity_name": "Create",
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": 2006,
        "class_name": "Data Security Finding",
        "type_uid": 200601,
        "type_name": "Data Security Finding: Create",
        "time": _epoch_ms(doc["@timestamp"]),
        "severity_id": severity_id,
        "severity": _OCSF_SEVERITY_NAME[severity_id],
        "status_id": 1,
        "status": "New",
        "is_alert": True,
        "count": alert.count,
        "message": alert.rule_title,
        "confidence_score": int(round(100 * float(v["fingerprint"]["confidence"] or 0.0))),
        "metadata": {
            "version": OCSF_VERSION,
            "uid": alert.event_id,
            "correlation_uid": v["finding"]["fingerprint"],
            "product": {"name": "vecleak", "vendor_name": "vecleak", "version": __version__},
            "labels": list(alert.tags),
        },
        "finding_info": {
            "uid": alert.event_id,
            "title": alert.rule_title,
            "types": [v["finding"]["kind"]],
            "data_sources": [v["source"]["kind"]],
            "analytic": {"uid": alert.rule_id, "name": alert.rule_title, "type_id": 1, "type": "Rule"},
        },
        "data_security": {
            # 4 = Data Discovery & Classification: we find data at rest in logs and indexes.
            "detection_system_id": 4,
            "detection_pattern": alert.rule_id,
            "data_lifecycle_state_id": 1,
            # 1 = Personal when the inversion found PII, else 99 Other (an embedding of unknown content).
            "category_id": 1 if pii else 99,
            "policy": {"uid": alert.rule_id, "name": alert.rule_title},
        },
        "unmapped": {"vecleak": v},
    }
    path = doc.get("log", {}).get("file", {}).get("path")
    if path:
        out["file"] = {
            "name": os.path.basename(path) or path,
            "path": path,
            "type_id": 1,
            "type": "Regular File",
        }
    return out


# --- ArcSight CEF ----------------------------------------------------------------------------------


def _cef_header(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _cef_value(text: Any) -> str:
    s = str(text)
    return s.replace("\\", "\\\\").replace("=", "\\=").replace("\r", "\\r").replace("\n", "\\n")


def alert_to_cef(alert: Alert, ecs: dict[str, Any] | None = None) -> str:
    """``CEF:0|vecleak|vecleak|VERSION|RULE|TITLE|SEV|ext``; custom strings carry the vector facts."""
    doc = ecs or alert_to_ecs(alert)
    v = doc["vecleak"]
    vec = v["vector"]
    fp = v["fingerprint"]
    ext: list[tuple[str, Any]] = [
        ("rt", _epoch_ms(doc["@timestamp"])),
        ("externalId", alert.event_id),
        ("cat", v["finding"]["kind"]),
        ("msg", alert.rule_title),
        ("filePath", doc.get("log", {}).get("file", {}).get("path") or v["source"]["name"]),
        ("cs1Label", "vectorSha256"),
        ("cs1", vec["sha256"]),
        ("cs2Label", "model"),
        ("cs2", fp["model"] or "unknown"),
        ("cs3Label", "encoding"),
        ("cs3", vec["encoding"]),
        ("cs4Label", "findingFingerprint"),
        ("cs4", v["finding"]["fingerprint"]),
        ("cs5Label", "location"),
        ("cs5", v["location"].get("json_path") or v["location"].get("line", "")),
        ("cn1Label", "dim"),
        ("cn1", vec["dim"]),
        ("cn2Label", "line"),
        ("cn2", v["location"].get("line", 0)),
        ("cn3Label", "count"),
        ("cn3", alert.count),
        ("cfp1Label", "modelConfidence"),
        ("cfp1", fp["confidence"]),
    ]
    inv = v.get("inversion") or {}
    if inv.get("text"):
        ext += [("cs6Label", "invertedTextMasked"), ("cs6", inv["text"])]
    if alert.group is not None:  # a roll-up (scanner.noise): cn3 is the folded count
        ext += [("act", "grouped"), ("cn4Label", "distinctVectors"), ("cn4", alert.group.distinct_vectors)]
    if inv.get("text_sealed"):  # only when the sink opted in to reveal (scanner.reveal)
        ext.append(("vecleakTextSealed", orjson.dumps(inv["text_sealed"]).decode()))
    header = "|".join(
        [
            "CEF:0",
            "vecleak",
            "vecleak",
            _cef_header(__version__),
            _cef_header(alert.rule_id),
            _cef_header(alert.rule_title),
            str(_CEF_SEVERITY[alert.level]),
        ]
    )
    return header + "|" + " ".join(f"{k}={_cef_value(val)}" for k, val in ext)


# --- SARIF 2.1.0 -----------------------------------------------------------------------------------

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _artifact_uri(path: str) -> str:
    """Relative to the working directory when inside it (what CI code-scanning expects), else file://."""
    p = Path(path)
    try:
        return p.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError):
        return p.resolve().as_uri() if p.is_absolute() or p.exists() else p.as_posix()


def alerts_to_sarif(alerts: Iterable[Alert]) -> dict[str, Any]:
    """One SARIF log with one run: a ``reportingDescriptor`` per rule seen, a result per alert."""
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    results: list[dict[str, Any]] = []
    for alert in alerts:
        doc = alert_to_ecs(alert)
        v = doc["vecleak"]
        if alert.rule_id not in index:
            index[alert.rule_id] = len(rules)
            rules.append(
                {
                    "id": alert.rule_id,
                    "name": alert.rule_id.replace(".", "_"),
                    "shortDescription": {"text": alert.rule_title},
                    "defaultConfiguration": {"level": _SARIF_LEVEL[alert.level]},
                    "properties": {
                        "tags": list(alert.tags),
                        "security-severity": f"{alert.level.severity / 10:.1f}",
                    },
                }
            )
        path = doc.get("log", {}).get("file", {}).get("path")
        loc = v["location"]
        if path:
            region: dict[str, Any] = {"startLine": max(1, int(loc.get("line", 1)))}
            location: dict[str, Any] = {
                "physicalLocation": {"artifactLocation": {"uri": _artifact_uri(path)}, "region": region}
            }
        else:
            location = {
                "logicalLocations": [
                    {"fullyQualifiedName": f"{v['source']['kind']}:{v['source']['name']}", "kind": "resource"}
                ]
            }
        vec = v["vector"]
        model = v["fingerprint"]["model"] or "unknown"
        results.append(
            {
                "ruleId": alert.rule_id,
                "ruleIndex": index[alert.rule_id],
                "level": _SARIF_LEVEL[alert.level],
                "message": {
                    "text": f"{alert.rule_title}: {vec['dim']}-d {vec['encoding']} vector "
                    f"(model {model}, sha256 {vec['sha256'][:12]})"
                },
                "locations": [location],
                "partialFingerprints": {"vecleakFindingFingerprint/v1": alert.fingerprint},
                "properties": {"vecleak": v, "eventId": alert.event_id},
            }
        )
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "vecleak",
                        "version": __version__,
                        "informationUri": "https://github.com/vecleak/vecleak",
                        "rules": rules,
                    }
                },
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }
