"""Realistic log documents with planted vectors, and a tiny REST helper that bypasses vecleak's code.

Test data goes in through plain HTTP (urllib), so a bug in vecleak's client layer cannot hide itself by
writing and reading the same wrong thing.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import urllib.error
import urllib.request
from typing import Any

import numpy as np

from tests.conftest import unit_vectors

DIM = 384
BASE_TIME = dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC)


def rest(url: str, method: str, path: str, body: Any = None, ndjson: bool = False) -> dict:
    data = None
    headers = {"accept": "application/json"}
    if body is not None:
        if ndjson:
            data = ("\n".join(json.dumps(x) for x in body) + "\n").encode()
            headers["content-type"] = "application/x-ndjson"
        else:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
    req = urllib.request.Request(url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from None


def bulk(url: str, index: str, docs: list[tuple[str, dict]]) -> None:
    lines: list[dict] = []
    for doc_id, doc in docs:
        lines.append({"index": {"_index": index, "_id": doc_id}})
        lines.append(doc)
    for start in range(0, len(lines), 2000):
        out = rest(url, "POST", "/_bulk?refresh=true", lines[start : start + 2000], ndjson=True)
        assert not out.get("errors"), [i for i in out["items"] if "error" in i["index"]][:3]


def ts(seconds: float) -> str:
    return (
        (BASE_TIME + dt.timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


_PATHS = [
    "/api/v1/search",
    "/api/v1/chat",
    "/healthz",
    "/api/v1/users/42",
    "/static/app.js",
    "/api/v1/embeddings",
]
_SERVICES = ["rag-gateway", "checkout", "auth", "search-api", "ingest-worker"]


def log_doc(i: int, rng: random.Random) -> dict:
    """One ordinary log line in ECS shape: what a Filebeat/OTel pipeline writes every second."""
    service = rng.choice(_SERVICES)
    path = rng.choice(_PATHS)
    status = rng.choice([200, 200, 200, 201, 204, 400, 404, 500])
    kind = i % 5
    if kind == 0:
        message = f'10.0.{i % 255}.{rng.randint(1, 254)} - - "GET {path} HTTP/1.1" {status} {rng.randint(200, 90000)} "-" "python-requests/2.32"'
    elif kind == 1:
        message = f"query ok: SELECT id, title FROM documents WHERE tenant_id = {rng.randint(1, 500)} AND score > 0.{rng.randint(10, 99)} LIMIT 20"
    elif kind == 2:
        message = (
            'Traceback (most recent call last):\n  File "/app/worker.py", line 88, in handle\n'
            "    result = client.search(query)\nTimeoutError: read timed out after 30.0s"
        )
    elif kind == 3:
        message = json.dumps(
            {
                "event": "retrieval",
                "top_k": 5,
                "scores": [round(rng.random(), 4) for _ in range(5)],
                "latency_ms": rng.randint(3, 400),
            }
        )
    else:
        message = f"user {rng.randint(1000, 9999)} logged in from {rng.choice(['web', 'ios', 'android'])} session={rng.getrandbits(128):032x}"
    doc: dict[str, Any] = {
        "@timestamp": ts(i),
        "log": {"level": rng.choice(["INFO", "INFO", "WARN", "ERROR", "DEBUG"])},
        "service": {"name": service, "version": f"1.{rng.randint(0, 9)}.{rng.randint(0, 30)}"},
        "message": message,
        "trace": {"id": f"{rng.getrandbits(128):032x}"},
        "http": {"request": {"method": "GET", "path": path}, "response": {"status_code": status}},
        "event": {"duration": rng.randint(10**5, 10**9)},
        "host": {"ip": f"10.1.{rng.randint(0, 255)}.{rng.randint(0, 255)}"},
        "metrics": {"latency_buckets": [rng.randint(0, 50) for _ in range(12)]},
        "tags": ["prod", service],
    }
    if i % 7 == 0:
        # A JWT and a content hash: long base64-ish strings that are not vectors.
        doc["auth"] = {
            "token": "eyJhbGciOiJIUzI1NiJ9."
            + base64.urlsafe_b64encode(json.dumps({"sub": i, "exp": 1800000000}).encode())
            .decode()
            .rstrip("=")
            + ".c2lnbmF0dXJl"
        }
        doc["file"] = {"hash": {"sha256": f"{rng.getrandbits(256):064x}"}}
    return doc


def vectors(n: int, seed: int) -> np.ndarray:
    return unit_vectors(n, DIM, seed=seed)


def plant_log_docs(start: int, seed: int) -> tuple[list[tuple[str, dict]], set[tuple[str, str]]]:
    """Three log documents that carry a vector, each in a different disguise; returns (docs, {(id, field)})."""
    v = vectors(3, seed)
    rng = random.Random(seed)
    a = log_doc(start, rng)
    a["message"] = "POST /v1/embeddings 200 response=" + json.dumps(
        {
            "object": "list",
            "data": [{"embedding": [float(x) for x in v[0]], "index": 0}],
            "model": "text-embedding-3-small",
        }
    )
    b = log_doc(start + 1, rng)
    b["debug"] = {"request_id": "r-17", "embedding": [float(x) for x in v[1]]}
    c = log_doc(start + 2, rng)
    c["payload"] = {"vector_b64": base64.b64encode(v[2].astype(">f4").tobytes()).decode(), "codec": "f32be"}
    docs = [(f"plant-msg-json-{seed}", a), (f"plant-src-array-{seed}", b), (f"plant-b64be-{seed}", c)]
    planted = {(docs[0][0], "message"), (docs[1][0], "debug.embedding"), (docs[2][0], "payload.vector_b64")}
    return docs, planted


def log_docs(n: int, seed: int = 0, start: int = 0) -> list[tuple[str, dict]]:
    rng = random.Random(seed)
    return [(f"log-{seed}-{i}", log_doc(start + i, rng)) for i in range(n)]


def vector_mapping(flavor: str, excludes: bool = False) -> dict:
    if flavor == "elasticsearch":
        emb = {"type": "dense_vector", "dims": DIM, "similarity": "cosine"}
        settings: dict = {}
    else:
        emb = {
            "type": "knn_vector",
            "dimension": DIM,
            "method": {"name": "hnsw", "engine": "lucene", "space_type": "l2"},
        }
        settings = {"index.knn": True}
    mappings: dict = {
        "properties": {
            "emb": emb,
            "text": {"type": "text"},
            "doc_title": {"type": "keyword"},
            "@timestamp": {"type": "date"},
        }
    }
    if excludes:
        mappings["_source"] = {"excludes": ["emb"]}
    return {"settings": {"number_of_shards": 2, "number_of_replicas": 0, **settings}, "mappings": mappings}


def rag_docs(n: int, seed: int, b64_first: bool = False) -> list[tuple[str, dict]]:
    v = vectors(n, seed + 1000)
    out = []
    for i in range(n):
        emb: Any = [float(x) for x in v[i]]
        if b64_first and i == 0:
            # Elasticsearch accepts dense_vector input as base64 of big-endian float32.
            emb = base64.b64encode(v[i].astype(">f4").tobytes()).decode()
        out.append(
            (
                f"chunk-{i}",
                {
                    "@timestamp": ts(i),
                    "text": f"Quarterly revenue note {i}: margins improved in EMEA.",
                    "doc_title": f"q{i}.pdf",
                    "emb": emb,
                },
            )
        )
    return out
