"""Elasticsearch and OpenSearch indexes as a source of Records.

Why a source of its own: logs mostly live in these servers, and vectors hide there in two ways. A log
index holds a vector someone logged (a float list in ``_source``, JSON inside a ``message`` string, a
base64 blob in a keyword field); those become Records scanned by the same detectors as files. A vector
index holds ``dense_vector``/``knn_vector`` fields whose values we already have as numbers; those become
Candidates directly (see :data:`MAPPED_VECTORS`), labelled with what the mapping says sits beside them.

The walk is point-in-time + ``search_after`` (sorted on ``_shard_doc``) on Elasticsearch >= 7.12, and a
scroll elsewhere (OpenSearch 2.x has PIT but no ``_shard_doc``; sorting on ``_id`` would load the id
field into the heap). Both can be sliced so that N processes or Kubernetes Indexed Job pods share one
index. A per-index high-water mark (the newest timestamp seen plus the ids seen at exactly that
timestamp, the tie-breaker) lives in a SQLite state file, so a scheduled run reads only what is new.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from scanner.model import Candidate, Diagnostic, Record, SourceRef
from scanner.state import StateStore

PAGE_SIZE = 500
KEEP_ALIVE = "5m"
# A string shorter than this cannot hold 16 numbers, the least any detector decodes.
MIN_STRING = 32
# Arrays of numbers in _source shorter than this are coordinates, counters, not embeddings.
MIN_ARRAY = 16
# How many ids sharing the high-water timestamp we remember; past this a burst may be re-read once.
MAX_TIE_IDS = 10_000
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
VECTOR_TYPES = {"dense_vector": "es-dense_vector", "knn_vector": "os-knn_vector"}
TEXT_TYPES = frozenset({"text", "keyword", "match_only_text", "wildcard", "constant_keyword", "flattened"})
_LONG_MAX = 2**63 - 1


class EsError(Exception):
    """A failure the user must act on (bad URL, TLS, missing index); the message says what to do."""


class EsAuthError(EsError):
    """401/403: credentials missing, wrong or without the privileges the walk needs."""


# --------------------------------------------------------------------------------------------------
# Credentials and connection


def _env_or_file(env: Mapping[str, str], name: str) -> str | None:
    """``NAME`` or the contents of the file named by ``NAME_FILE`` (Kubernetes secret mounts)."""
    value = env.get(name)
    if value:
        return value.strip()
    path = env.get(f"{name}_FILE")
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                return fh.read().strip()
        except OSError as exc:
            raise EsError(f"{name}_FILE={path}: {exc.strerror or exc}") from None
    return None


def credentials_from_env(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Client auth options from VECLEAK_ES_API_KEY or VECLEAK_ES_USERNAME/PASSWORD (or their *_FILE).

    Never from flags: a flag shows in ``ps`` and in shell history.
    """
    env = os.environ if env is None else env
    api_key = _env_or_file(env, "VECLEAK_ES_API_KEY")
    if api_key:
        return {"api_key": api_key}
    user = _env_or_file(env, "VECLEAK_ES_USERNAME")
    password = _env_or_file(env, "VECLEAK_ES_PASSWORD")
    if user and password is not None:
        return {"basic_auth": (user, password)}
    if user:
        raise EsError("VECLEAK_ES_USERNAME is set but VECLEAK_ES_PASSWORD(_FILE) is not")
    return {}


def _auth_headers(auth: Mapping[str, Any]) -> dict[str, str]:
    if "api_key" in auth:
        return {"authorization": f"ApiKey {auth['api_key']}"}
    if "basic_auth" in auth:
        user, password = auth["basic_auth"]
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"authorization": f"Basic {token}"}
    return {}


@dataclass
class Cluster:
    """One server, whichever product it is: detects the flavour, then talks through its own client.

    Every request goes through :meth:`request`, which retries 429/5xx and connection errors with
    exponential backoff and jitter, and turns 401/403 into :class:`EsAuthError`.
    """

    url: str
    ca_cert: str | None = None
    auth: dict[str, Any] = field(default_factory=dict)
    timeout: float = 60.0
    retries: int = 5
    backoff: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    flavor: str = ""
    version: tuple[int, ...] = ()
    cluster_uuid: str = ""
    _client: Any = None

    @classmethod
    def connect(
        cls, url: str, ca_cert: str | None = None, auth: dict[str, Any] | None = None, **kw: Any
    ) -> Cluster:
        cluster = cls(
            url.rstrip("/"), ca_cert, dict(auth if auth is not None else credentials_from_env()), **kw
        )
        cluster._probe()
        cluster._client = cluster._make_client()
        if not cluster.cluster_uuid:
            meta = cluster.request(
                "GET", "/_cluster/state/metadata", params={"filter_path": "metadata.cluster_uuid"}
            )
            cluster.cluster_uuid = str(meta.get("metadata", {}).get("cluster_uuid", "")) or "unknown"
        return cluster

    @property
    def has_pit(self) -> bool:
        """PIT with ``_shard_doc``: Elasticsearch 7.12 and later."""
        return self.flavor == "elasticsearch" and self.version >= (7, 12)

    @property
    def excludes_vectors(self) -> bool:
        """Elasticsearch 9.2+ leaves vectors out of ``_source`` unless asked."""
        return self.flavor == "elasticsearch" and self.version >= (9, 2)

    # The probe uses urllib3 directly: elasticsearch-py refuses to talk to anything but Elasticsearch,
    # so we must know the product before picking a client.
    def _probe(self) -> None:
        import urllib3  # here, not at import: every vecleak command registers this module's CLI

        kw: dict[str, Any] = {"timeout": urllib3.Timeout(total=self.timeout), "retries": False}
        if self.url.startswith("https"):
            kw["cert_reqs"] = "CERT_REQUIRED"
            if self.ca_cert:
                kw["ca_certs"] = self.ca_cert
        http = urllib3.PoolManager(**kw)
        headers = {"accept": "application/json", **_auth_headers(self.auth)}

        def get(path: str) -> urllib3.BaseHTTPResponse:
            for attempt in range(self.retries + 1):
                try:
                    resp = http.request("GET", self.url + path, headers=headers)
                except urllib3.exceptions.SSLError as exc:
                    raise EsError(
                        f"{self.url}: TLS verification failed ({exc}); pass --ca-cert PATH"
                    ) from None
                except urllib3.exceptions.HTTPError as exc:
                    if attempt == self.retries:
                        raise EsError(f"{self.url}: cannot connect ({exc})") from None
                    self._wait(attempt)
                    continue
                if resp.status in (401, 403):
                    raise EsAuthError(_auth_message(self.url, resp.status))
                if resp.status in RETRY_STATUS and attempt < self.retries:
                    self._wait(attempt)
                    continue
                return resp
            raise AssertionError("unreachable")

        resp = get("/")
        body = _json_or_empty(resp.data) if resp.status == 200 else {}
        product = resp.headers.get("x-elastic-product")
        if resp.status != 200 or not body:
            # Some builds (the integ-test distribution) have no root endpoint; nodes info says it all.
            resp = get("/_nodes/_local?filter_path=nodes.*.version")
            if resp.status != 200:
                raise EsError(f"{self.url}: not an Elasticsearch/OpenSearch endpoint (HTTP {resp.status})")
            product = resp.headers.get("x-elastic-product") or product
            versions = [n.get("version", "") for n in _json_or_empty(resp.data).get("nodes", {}).values()]
            body = {"version": {"number": versions[0] if versions else ""}}
        version = body.get("version", {})
        if version.get("distribution") == "opensearch":
            self.flavor = "opensearch"
        elif (
            product == "Elasticsearch" or "elastic" in str(body.get("tagline", "")).lower() or product is None
        ):
            self.flavor = "elasticsearch"
        else:
            raise EsError(f"{self.url}: unknown product {product!r}")
        self.version = _parse_version(str(version.get("number", "")))
        self.cluster_uuid = str(body.get("cluster_uuid", "") or "")

    def _make_client(self) -> Any:
        common: dict[str, Any] = {
            "request_timeout" if self.flavor == "elasticsearch" else "timeout": self.timeout
        }
        if self.flavor == "elasticsearch":
            from elasticsearch import Elasticsearch

            opts: dict[str, Any] = {
                "max_retries": 0,
                "retry_on_status": (),
                "retry_on_timeout": False,
                **common,
            }
            if self.ca_cert:
                opts["ca_certs"] = self.ca_cert
            if "api_key" in self.auth:
                opts["api_key"] = self.auth["api_key"]
            elif "basic_auth" in self.auth:
                opts["basic_auth"] = tuple(self.auth["basic_auth"])
            return Elasticsearch(self.url, **opts)
        from opensearchpy import OpenSearch

        opts = {"max_retries": 0, "retry_on_status": (), "retry_on_timeout": False, **common}
        if self.url.startswith("https"):
            opts.update(use_ssl=True, verify_certs=True)
            if self.ca_cert:
                opts["ca_certs"] = self.ca_cert
        if "api_key" in self.auth:
            opts["headers"] = {"authorization": f"ApiKey {self.auth['api_key']}"}
        elif "basic_auth" in self.auth:
            opts["http_auth"] = tuple(self.auth["basic_auth"])
        return OpenSearch([self.url], **opts)

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        ndjson: bool = False,
    ) -> dict[str, Any]:
        """One REST call with retries; returns the decoded body. Raises EsError with the server's reason."""
        for attempt in range(self.retries + 1):
            status, payload, retryable = self._send(method, path, params, body, ndjson)
            if status is not None and 200 <= status < 300:
                return payload if isinstance(payload, dict) else {}
            if status in (401, 403):
                raise EsAuthError(_auth_message(self.url, status, payload))
            if retryable and attempt < self.retries:
                self._wait(attempt)
                continue
            raise EsError(f"{method} {path}: {_reason(status, payload)}")
        raise AssertionError("unreachable")

    def bulk(self, lines: Iterable[Any], params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """POST /_bulk with newline-delimited JSON (action and document lines, already paired)."""
        body = b"".join(orjson.dumps(line) + b"\n" for line in lines)
        return self.request("POST", "/_bulk", params=params, body=body, ndjson=True)

    def _send(
        self, method: str, path: str, params: Mapping[str, Any] | None, body: Any, ndjson: bool = False
    ) -> tuple[int | None, Any, bool]:
        """(status, body, retryable) whatever client is underneath; status None is a connection error."""
        if self.flavor == "elasticsearch":
            from elasticsearch import ApiError, TransportError

            headers = {"accept": "application/json"}
            if body is not None:
                headers["content-type"] = "application/x-ndjson" if ndjson else "application/json"
            try:
                resp = self._client.perform_request(method, path, params=params, headers=headers, body=body)
                return resp.meta.status, resp.body, False
            except ApiError as exc:
                return exc.meta.status, exc.body, exc.meta.status in RETRY_STATUS
            except TransportError as exc:  # connection refused, reset, timeout
                return None, str(exc), True
        from opensearchpy.exceptions import ConnectionError as OsConnectionError
        from opensearchpy.exceptions import TransportError as OsTransportError

        try:
            headers = {"content-type": "application/x-ndjson"} if ndjson else None
            result = self._client.transport.perform_request(
                method, path, params=params, body=body, headers=headers
            )
            return 200, result, False
        except OsConnectionError as exc:
            return None, str(exc), True
        except OsTransportError as exc:
            status = exc.status_code if isinstance(exc.status_code, int) else None
            return status, exc.info, status is None or status in RETRY_STATUS

    def _wait(self, attempt: int) -> None:
        # Full jitter: N workers hitting a 429 together must not retry in lockstep.
        self.sleep(random.uniform(0, min(30.0, self.backoff * 2**attempt)))

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()


def _auth_message(url: str, status: int, payload: Any = None) -> str:
    what = "authentication failed" if status == 401 else "not authorised"
    reason = _reason(status, payload) if payload else f"HTTP {status}"
    return (
        f"{url}: {what} ({reason}). Set VECLEAK_ES_API_KEY or VECLEAK_ES_USERNAME/VECLEAK_ES_PASSWORD "
        "(or their *_FILE variants); the scan needs read and view_index_metadata on the indexes."
    )


def _reason(status: int | None, payload: Any) -> str:
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict):
            root = (err.get("root_cause") or [err])[0]
            return f"HTTP {status}: {root.get('type')}: {root.get('reason')}"
        if err:
            return f"HTTP {status}: {err}"
    return f"HTTP {status}: {str(payload)[:200]}" if status else f"connection failed: {str(payload)[:200]}"


def _json_or_empty(data: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text.split("-")[0])[:3])


# --------------------------------------------------------------------------------------------------
# Mappings


@dataclass
class IndexInfo:
    """What an index's mapping says: where vectors are typed as vectors, and what text sits beside them."""

    name: str
    vector_fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    text_fields: list[str] = field(default_factory=list)
    timestamp_field: str | None = None
    source_enabled: bool = True
    source_excludes: list[str] = field(default_factory=list)

    @property
    def source_text_beside(self) -> bool:
        """True when documents carry the text their vectors were made from, readable next to them."""
        return self.source_enabled and bool(self.text_fields)

    def summary(self) -> dict[str, Any]:
        return {
            "index": self.name,
            "vector_fields": {
                k: {kk: vv for kk, vv in v.items() if vv is not None} for k, v in self.vector_fields.items()
            },
            "text_fields": self.text_fields,
            "source_text_beside_vectors": bool(self.vector_fields) and self.source_text_beside,
            "timestamp_field": self.timestamp_field,
            "source_enabled": self.source_enabled,
            "source_excludes": self.source_excludes,
        }


def analyse_mapping(index: str, mapping: Mapping[str, Any], timestamp_field: str = "@timestamp") -> IndexInfo:
    """Read one index's mapping (the value under ``mappings`` in ``GET /INDEX/_mapping``)."""
    info = IndexInfo(index)
    source = mapping.get("_source", {}) or {}
    info.source_enabled = source.get("enabled", True) is not False
    info.source_excludes = [str(x) for x in source.get("excludes", []) or []]
    dates: list[str] = []

    def walk(props: Mapping[str, Any], prefix: str) -> None:
        for name, spec in props.items():
            if not isinstance(spec, Mapping):
                continue
            path = f"{prefix}{name}"
            ftype = spec.get("type", "object")
            if ftype in VECTOR_TYPES:
                info.vector_fields[path] = {
                    "type": ftype,
                    "dims": spec.get("dims", spec.get("dimension")),
                    "element_type": spec.get("element_type", spec.get("data_type")),
                    "index": spec.get("index"),
                }
            elif ftype in TEXT_TYPES:
                info.text_fields.append(path)
            elif ftype in ("date", "date_nanos"):
                dates.append(path)
            if isinstance(spec.get("properties"), Mapping):
                walk(spec["properties"], path + ".")

    walk(mapping.get("properties", {}) or {}, "")
    if timestamp_field in dates:
        info.timestamp_field = timestamp_field
    return info


def load_indexes(cluster: Cluster, pattern: str, timestamp_field: str = "@timestamp") -> list[IndexInfo]:
    """Concrete open indexes matching PATTERN (comma lists and wildcards), with their mappings, sorted."""
    doc = cluster.request("GET", f"/{_quote(pattern)}/_mapping", params={"allow_no_indices": "true"})
    return [
        analyse_mapping(name, (body or {}).get("mappings", {}) or {}, timestamp_field)
        for name, body in sorted(doc.items())
    ]


def _quote(pattern: str) -> str:
    from urllib.parse import quote

    return quote(pattern, safe="*,-_.+:")


# --------------------------------------------------------------------------------------------------
# High-water marks


class StateDB:
    """Per-(cluster, index, slice) high-water marks, kept in the shared state store (:mod:`scanner.state`).

    The mark is the newest timestamp seen (epoch millis) plus the ids seen at exactly that timestamp:
    the next run asks for ``timestamp >= mark`` and skips those ids, so a burst of documents sharing a
    millisecond is neither lost nor read twice.
    """

    NAMESPACE = "es.hwm"

    def __init__(self, path: str) -> None:
        self.path = path
        # Not exclusive: the slices of one scan (local processes, or the pods of an Indexed Job on
        # one volume) share the file, each upserting only its own (cluster, index, slice) keys.
        self._store = StateStore(path, exclusive=False)

    def get(self, scope: str, index: str) -> tuple[int, frozenset[str]] | None:
        mark = self._store.get(self.NAMESPACE, _mark_key(scope, index))
        if mark is None:
            return None
        return int(mark["ts"]), frozenset(mark["tie"])

    def put(self, scope: str, index: str, ts: int, tie: Iterable[str], docs: int) -> None:
        key = _mark_key(scope, index)
        # One transaction (BEGIN IMMEDIATE): slice workers in other processes add their counts safely.
        with self._store.transaction():
            before = self._store.get(self.NAMESPACE, key) or {}
            self._store.put(
                self.NAMESPACE,
                key,
                {
                    "ts": ts,
                    "tie": sorted(tie)[:MAX_TIE_IDS],
                    "docs": int(before.get("docs", 0)) + docs,
                    "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                },
            )

    def close(self) -> None:
        self._store.close()


def _mark_key(scope: str, index: str) -> str:
    return f"{scope}\x1f{index}"


class _Mark:
    """Tracks the newest timestamp in one walk and the ids that carry it."""

    __slots__ = ("ts", "ids")

    def __init__(self, ts: int | None = None, ids: Iterable[str] = ()) -> None:
        self.ts = ts
        self.ids: set[str] = set(ids)

    def see(self, ts: int, doc_id: str) -> None:
        if self.ts is None or ts > self.ts:
            self.ts = ts
            self.ids = {doc_id}
        elif ts == self.ts and len(self.ids) < MAX_TIE_IDS:
            self.ids.add(doc_id)


# --------------------------------------------------------------------------------------------------
# The walk


@dataclass
class WalkStats:
    indexes: int = 0
    docs: int = 0
    bytes: int = 0
    skipped_tie: int = 0


def walk_index(
    cluster: Cluster,
    info: IndexInfo,
    query: Mapping[str, Any] | None = None,
    slice_id: int | None = None,
    slices: int = 1,
    page_size: int = PAGE_SIZE,
    sample: int | None = None,
    use_pit: bool | None = None,
) -> Iterator[dict[str, Any]]:
    """Every hit of one index (optionally one slice of it) matching ``query``, with vectors included."""
    use_pit = cluster.has_pit if use_pit is None else use_pit
    body: dict[str, Any] = {"size": page_size, "track_total_hits": False}
    if query:
        body["query"] = query
    if slices > 1 and slice_id is not None:
        body["slice"] = {"id": slice_id, "max": slices}
    _ask_for_vectors(cluster, info, body)
    if info.timestamp_field:
        body["docvalue_fields"] = [{"field": info.timestamp_field, "format": "epoch_millis"}]
    remaining = sample if sample is not None else -1
    pages = _pit_pages(cluster, info.name, body) if use_pit else _scroll_pages(cluster, info.name, body)
    try:
        for hits in pages:
            for hit in hits:
                if remaining == 0:
                    return
                remaining -= 1
                yield hit
            if remaining == 0:
                return
    finally:
        pages.close()


def _ask_for_vectors(cluster: Cluster, info: IndexInfo, body: dict[str, Any]) -> None:
    """Vectors left out of ``_source`` (ES 9.2 by default, or a mapping's excludes) must be asked for."""
    if cluster.excludes_vectors:
        body["_source"] = {"exclude_vectors": False}
    excluded = [
        f for f in info.vector_fields if not info.source_enabled or _matches_any(f, info.source_excludes)
    ]
    if excluded:
        body["fields"] = excluded


def _matches_any(path: str, patterns: list[str]) -> bool:
    import fnmatch

    return any(fnmatch.fnmatchcase(path, p) or path.startswith(p + ".") for p in patterns)


def _pit_pages(cluster: Cluster, index: str, body: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    pit = cluster.request("POST", f"/{_quote(index)}/_pit", params={"keep_alive": KEEP_ALIVE})["id"]
    body = {**body, "sort": [{"_shard_doc": "asc"}]}
    try:
        while True:
            body["pit"] = {"id": pit, "keep_alive": KEEP_ALIVE}
            page = cluster.request("POST", "/_search", body=body)
            pit = page.get("pit_id", pit)
            hits = page.get("hits", {}).get("hits", [])
            if not hits:
                return
            yield hits
            if len(hits) < body["size"]:
                return
            body["search_after"] = hits[-1]["sort"]
    finally:
        with contextlib.suppress(EsError):
            cluster.request("DELETE", "/_pit", body={"id": pit})


def _scroll_pages(cluster: Cluster, index: str, body: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    body = {**body, "sort": ["_doc"]}
    body.pop("track_total_hits", None)
    page = cluster.request("POST", f"/{_quote(index)}/_search", params={"scroll": KEEP_ALIVE}, body=body)
    scroll_id = page.get("_scroll_id")
    try:
        while True:
            hits = page.get("hits", {}).get("hits", [])
            if not hits:
                return
            yield hits
            page = cluster.request(
                "POST", "/_search/scroll", body={"scroll": KEEP_ALIVE, "scroll_id": scroll_id}
            )
            scroll_id = page.get("_scroll_id", scroll_id)
    finally:
        if scroll_id:
            with contextlib.suppress(EsError):
                cluster.request("DELETE", "/_search/scroll", body={"scroll_id": [scroll_id]})


# --------------------------------------------------------------------------------------------------
# Documents to Records


class _MappedVectors:
    """Hands the pipeline the Candidates a source already decoded (mapped vector fields).

    Not a payload format, so not in detectors.REGISTRY: the ES command puts it first in its Pipeline.
    Records that carry such candidates have empty ``data``, so the byte detectors skip them at once.
    """

    name = "es_mapped_vector"
    openers: frozenset[str] = frozenset()  # it reads no bytes, so no prefilter window is its

    def may_contain(self, data: bytes) -> bool:
        return not data

    def find(self, record: Record) -> Iterable[Candidate]:
        return record.context.get("candidates", ())


MAPPED_VECTORS = _MappedVectors()


def _leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(field path, value) for every string and every array of numbers; array indices are not in paths."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        if value and all(isinstance(x, int | float) and not isinstance(x, bool) for x in value):
            yield path, value
        else:
            for v in value:
                yield from _leaves(v, path)


def _vector_values(value: Any) -> Iterator[tuple[np.ndarray | None, str]]:
    """A mapped vector field's value(s): a float list, a list of them (multi-vector), or base64 (big-endian)."""
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            yield None, "b64"
            return
        if len(raw) % 4:
            yield None, "b64"
            return
        yield np.frombuffer(raw, dtype=">f4").astype(np.float32), "b64be"
    elif isinstance(value, list) and value and all(isinstance(x, list) for x in value):
        for v in value:
            yield from _vector_values(v)
    elif isinstance(value, list):
        try:
            yield np.asarray(value, dtype=np.float32), ""
        except (TypeError, ValueError):
            yield None, ""


def _get_path(doc: Mapping[str, Any], path: str) -> list[Any]:
    """Values at a dotted path in _source, through arrays of objects and dotted keys."""
    out: list[Any] = []

    def go(node: Any, parts: list[str]) -> None:
        if not parts:
            out.append(node)
            return
        if isinstance(node, list):
            for item in node:
                go(item, parts)
            return
        if not isinstance(node, Mapping):
            return
        for i in range(len(parts), 0, -1):
            key = ".".join(parts[:i])
            if key in node:
                go(node[key], parts[i:])

    go(doc, path.split("."))
    return out


def doc_records(
    hit: Mapping[str, Any], info: IndexInfo, source: SourceRef, flavor: str
) -> Iterator[Record | Diagnostic]:
    """One Record per string field and per numeric array; one Candidate-carrying Record per mapped vector."""
    index = str(hit.get("_index", info.name))
    doc_id = str(hit.get("_id", ""))
    src = hit.get("_source") or {}
    fields = hit.get("fields") or {}

    def ctx(path: str, **extra: Any) -> dict[str, Any]:
        return {"es": {"index": index, "id": doc_id, "field": path}, **extra}

    for path, spec in info.vector_fields.items():
        values = _get_path(src, path) or ([fields[path]] if path in fields else [])
        candidates = []
        for value in values:
            for vec, how in _vector_values(value):
                if vec is None:
                    yield Diagnostic(
                        "es-vector-unreadable", f"{index}/{doc_id}: {path} is not a float vector", index
                    )
                    continue
                encoding = VECTOR_TYPES[spec["type"]] + (f"-{how}" if how else "")
                candidates.append(
                    Candidate(
                        values=vec,
                        encoding=encoding,
                        start=0,
                        end=0,
                        json_path=path,
                        key=path.rsplit(".", 1)[-1],
                        precision="float32"
                        if spec.get("element_type") in (None, "float")
                        else str(spec["element_type"]),
                        hints={"mapped": spec["type"], "flavor": flavor},
                    )
                )
        if candidates:
            yield Record(b"", source, path=path, context=ctx(path, candidates=candidates))

    for path, value in _leaves(src, ""):
        if path in info.vector_fields:
            continue
        if isinstance(value, str):
            if len(value) < MIN_STRING:
                continue
            data = value.encode("utf-8", "surrogatepass")
        else:
            if len(value) < MIN_ARRAY:
                continue
            data = orjson.dumps(value)
        yield Record(data, source, path=path, context=ctx(path))


# --------------------------------------------------------------------------------------------------
# The source


@dataclass
class EsSource:
    """Records from every document of the indexes matching ``pattern``, new ones only with a state DB."""

    cluster: Cluster
    pattern: str
    query: Mapping[str, Any] | None = None
    since: str | None = None
    slice_id: int | None = None
    slices: int = 1
    sample: int | None = None
    state: StateDB | None = None
    page_size: int = PAGE_SIZE
    timestamp_field: str = "@timestamp"
    use_pit: bool | None = None
    stats: WalkStats = field(default_factory=WalkStats)
    indexes: list[IndexInfo] = field(default_factory=list)
    on_index: Callable[[IndexInfo], None] | None = None

    @property
    def scope(self) -> str:
        """State key: which cluster and which share of the walk this process owns."""
        part = (
            f"slice {self.slice_id}/{self.slices}" if self.slices > 1 and self.slice_id is not None else "all"
        )
        return f"{self.cluster.cluster_uuid}|{part}"

    def records(self) -> Iterator[Record | Diagnostic]:
        self.indexes = load_indexes(self.cluster, self.pattern, self.timestamp_field)
        if not self.indexes:
            yield Diagnostic("es-no-index", f"no open index matches {self.pattern!r}", self.pattern)
        for info in self.indexes:
            self.stats.indexes += 1
            if self.on_index is not None:
                self.on_index(info)
            yield from self._index_records(info)

    def _index_records(self, info: IndexInfo) -> Iterator[Record | Diagnostic]:
        source = SourceRef(
            kind="es",
            display=info.name,
            identity=f"es:{self.cluster.cluster_uuid}/{info.name}",
            labels=_labels(self.cluster, info),
        )
        mark = self.state.get(self.scope, info.name) if self.state is not None else None
        if self.state is not None and info.timestamp_field is None:
            yield Diagnostic(
                "es-no-timestamp",
                f"{info.name}: no {self.timestamp_field} date field; read in full on every run",
                info.name,
            )
        query = self._query(info, mark)
        tracker = _Mark(*(mark if mark else (None, ())))
        tie = mark[1] if mark else frozenset()
        docs = 0
        for hit in walk_index(
            self.cluster, info, query, self.slice_id, self.slices, self.page_size, self.sample, self.use_pit
        ):
            ts = _hit_millis(hit, info.timestamp_field)
            if mark is not None and ts == mark[0] and hit.get("_id") in tie:
                self.stats.skipped_tie += 1
                continue
            docs += 1
            self.stats.docs += 1
            for item in doc_records(hit, info, source, self.cluster.flavor):
                if isinstance(item, Record):
                    self.stats.bytes += len(item.data)
                yield item
            if ts is not None:
                tracker.see(ts, str(hit.get("_id")))
        # The engine consumed every record of this index before the generator resumed here.
        if self.state is not None and info.timestamp_field and tracker.ts is not None:
            self.state.put(self.scope, info.name, tracker.ts, tracker.ids, docs)

    def _query(self, info: IndexInfo, mark: tuple[int, frozenset[str]] | None) -> dict[str, Any] | None:
        filters: list[dict[str, Any]] = []
        if self.query:
            filters.append(dict(self.query))
        if self.since and info.timestamp_field:
            filters.append({"range": {info.timestamp_field: {"gte": f"now-{self.since}"}}})
        if mark is not None and info.timestamp_field:
            filters.append({"range": {info.timestamp_field: {"gte": mark[0], "format": "epoch_millis"}}})
        if not filters:
            return None
        return filters[0] if len(filters) == 1 else {"bool": {"filter": filters}}


def _hit_millis(hit: Mapping[str, Any], ts_field: str | None) -> int | None:
    if not ts_field:
        return None
    values = (hit.get("fields") or {}).get(ts_field)
    if not values:
        return None
    try:
        ms = int(float(values[0]))
    except (TypeError, ValueError):
        return None
    return None if ms >= _LONG_MAX else ms


def _labels(cluster: Cluster, info: IndexInfo) -> dict[str, Any]:
    labels: dict[str, Any] = {
        "es_flavor": cluster.flavor,
        "es_version": ".".join(map(str, cluster.version)),
        "es_cluster_uuid": cluster.cluster_uuid,
    }
    if info.vector_fields:
        labels["es_vector_fields"] = ",".join(f"{k}:{v['type']}" for k, v in info.vector_fields.items())
        labels["es_source_text_beside_vectors"] = info.source_text_beside
        if info.text_fields:
            labels["es_text_fields"] = ",".join(info.text_fields[:20])
    return labels


def parse_duration(text: str) -> str:
    """Validate ``--since`` (``15m``, ``24h``, ``7d``) into Elasticsearch date-math units."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if not m:
        raise ValueError(f"--since {text!r}: expected a number and one of s, m, h, d, w (e.g. 24h)")
    return f"{m.group(1)}{m.group(2)}"
