"""Alerts indexed into Elasticsearch/OpenSearch as ECS documents, for Kibana or OpenSearch Dashboards.

``--output elasticsearch:https://siem:9200`` (or ``opensearch:``) writes each alert to the daily
index ``vecleak-alerts-YYYY.MM.DD`` with ``_id`` = the alert's ``event.id``, so a replayed run
overwrites instead of duplicating. The first write installs the ``vecleak-alerts`` index template, so
ids, hashes and locations are keywords a SOC can aggregate on, whatever the cluster's dynamic mapping.
Credentials and CA come from the same variables as the ES source (VECLEAK_ES_*; VECLEAK_ES_CA_CERT).
"""

from __future__ import annotations

import os
from typing import Any

from scanner.ecs import alert_to_ecs
from scanner.model import Alert, Diagnostic
from scanner.sources.elasticsearch import Cluster, EsError

INDEX_PREFIX = "vecleak-alerts-"
TEMPLATE_NAME = "vecleak-alerts"
BATCH = 500

TEMPLATE: dict[str, Any] = {
    "index_patterns": [f"{INDEX_PREFIX}*"],
    "priority": 200,
    "template": {
        "settings": {"number_of_shards": 1},
        "mappings": {
            "dynamic_templates": [
                # Everything textual in an alert is an identifier, a hash or a short label.
                {
                    "strings": {
                        "match_mapping_type": "string",
                        "mapping": {"type": "keyword", "ignore_above": 1024},
                    }
                }
            ],
            "properties": {
                "@timestamp": {"type": "date"},
                "event": {
                    "properties": {
                        "kind": {"type": "keyword"},
                        "id": {"type": "keyword"},
                        "severity": {"type": "long"},
                        "risk_score": {"type": "float"},
                    }
                },
                "rule": {"properties": {"id": {"type": "keyword"}, "name": {"type": "keyword"}}},
                "vecleak": {
                    "properties": {
                        "level": {"type": "keyword"},
                        "location": {
                            "properties": {
                                "index": {"type": "keyword"},
                                "id": {"type": "keyword"},
                                "field": {"type": "keyword"},
                                "offset": {"type": "long"},
                                "line": {"type": "long"},
                            }
                        },
                        "vector": {
                            "properties": {
                                "dim": {"type": "integer"},
                                "sha256": {"type": "keyword"},
                                "norm": {"type": "float"},
                            }
                        },
                        "classifier": {"properties": {"score": {"type": "float"}}},
                        "fingerprint": {"properties": {"confidence": {"type": "float"}}},
                    }
                },
            },
        },
    },
    "_meta": {"description": "vecleak DLP alerts (ECS)", "managed_by": "vecleak"},
}


class ElasticsearchSink:
    name = "elasticsearch"

    def __init__(self, cluster: Cluster, refresh: bool = False) -> None:
        self.cluster = cluster
        self.refresh = refresh
        self._buffer: list[dict[str, Any]] = []
        self._template_ready = False
        self.indexed = 0

    def send(self, alert: Alert) -> None:
        self._buffer.append(alert_to_ecs(alert))
        if len(self._buffer) >= BATCH:
            self.flush()

    def diagnostic(self, diag: Diagnostic) -> None:
        """Input problems stay in the run's own output; the alert index is for alerts only."""

    def flush(self) -> None:
        if not self._buffer:
            return
        if not self._template_ready:
            self.cluster.request("PUT", f"/_index_template/{TEMPLATE_NAME}", body=TEMPLATE)
            self._template_ready = True
        lines: list[Any] = []
        for doc in self._buffer:
            day = doc["@timestamp"][:10].replace("-", ".")
            lines.append({"index": {"_index": f"{INDEX_PREFIX}{day}", "_id": doc["event"]["id"]}})
            lines.append(doc)
        params = {"refresh": "true"} if self.refresh else None
        result = self.cluster.bulk(lines, params=params)
        failed = [item for item in result.get("items", []) if "error" in item.get("index", {})]
        if failed:
            raise EsError(
                f"alert sink: {len(failed)} alert(s) rejected, first: {failed[0]['index']['error']}"
            )
        self.indexed += len(self._buffer)
        self._buffer.clear()

    def close(self, summary: dict[str, Any]) -> None:
        try:
            self.flush()
        finally:
            self.cluster.close()


def open(target: str, **options: Any) -> ElasticsearchSink:  # noqa: A001 - the sink-module convention
    if not target.startswith(("http://", "https://")):
        raise ValueError(
            f"elasticsearch sink: expected a URL, e.g. elasticsearch:https://siem:9200 (got {target!r})"
        )
    cluster = Cluster.connect(target, ca_cert=os.environ.get("VECLEAK_ES_CA_CERT") or None)
    return ElasticsearchSink(cluster, refresh=bool(options.get("refresh", False)))
