"""`vecleak es scan` against a real Elasticsearch 9.2 and a real OpenSearch 2.19 (see tests/es/conftest.py)."""

from __future__ import annotations

import os
import re
import stat

import pytest

from scanner.sources.elasticsearch import Cluster, EsSource, load_indexes, walk_index
from tests.conftest import alerts, run_cli
from tests.es.docs import bulk, log_docs, plant_log_docs, rag_docs, rest, vector_mapping


def located(stdout: bytes) -> set[tuple[str, str, str]]:
    out = set()
    for a in alerts(stdout):
        loc = a["vecleak"]["location"]
        out.add((loc["index"], loc["id"], loc["field"]))
    return out


def walked(stderr: bytes) -> int:
    m = re.search(rb"vecleak es: ([\d,]+) document", stderr)
    assert m, stderr.decode(errors="replace")
    return int(m.group(1).replace(b",", b""))


def scan(url: str, *args: str) -> tuple[bytes, bytes, int]:
    proc = run_cli("es", "scan", "--url", url, "--format", "jsonl", "--no-progress", *args)
    assert proc.returncode in (0, 3), proc.stderr.decode(errors="replace")
    return proc.stdout, proc.stderr, proc.returncode


def flavor_of(url: str) -> str:
    return Cluster.connect(url).flavor


def test_finds_exactly_the_planted_vectors(server: str, uid: str) -> None:
    flavor = flavor_of(server)
    logs, rag = f"logs-app-{uid}", f"rag-chunks-{uid}"
    docs = log_docs(300, seed=1)
    plants, planted = plant_log_docs(300, seed=7)
    bulk(server, logs, docs + plants)
    rest(server, "PUT", f"/{rag}", vector_mapping(flavor))
    bulk(server, rag, rag_docs(4, seed=3))

    stdout, stderr, code = scan(server, "--index", f"logs-app-{uid},rag-chunks-{uid}", "--mappings")
    expected = {(logs, doc_id, fld) for doc_id, fld in planted} | {
        (rag, f"chunk-{i}", "emb") for i in range(4)
    }
    assert located(stdout) == expected
    assert code == 3
    assert walked(stderr) == 300 + 3 + 4
    encodings = {
        a["vecleak"]["vector"]["encoding"] for a in alerts(stdout) if a["vecleak"]["location"]["index"] == rag
    }
    assert encodings == ({"es-dense_vector"} if flavor == "elasticsearch" else {"os-knn_vector"})
    rag_alert = next(a for a in alerts(stdout) if a["vecleak"]["location"]["index"] == rag)
    assert rag_alert["labels"]["es_source_text_beside_vectors"] is True
    assert rag_alert["labels"]["es_flavor"] == flavor
    assert b'"source_text_beside_vectors":true' in stderr  # --mappings summary of the rag index
    # No raw vector leaves the scanner: no 384-long float lists in the alerts.
    assert not re.search(rb"(-?0\.\d+,\s*){30}", stdout)


def test_vectors_left_out_of_source_are_still_read(es_url: str, uid: str) -> None:
    """ES 9.2 drops vectors from _source by default, and a mapping may exclude them: both are fetched."""
    index = f"rag-excl-{uid}"
    rest(es_url, "PUT", f"/{index}", vector_mapping("elasticsearch", excludes=True))
    bulk(es_url, index, rag_docs(3, seed=5))
    plain = rest(es_url, "GET", f"/{index}/_search")
    assert all("emb" not in h["_source"] for h in plain["hits"]["hits"])  # the server really hides them
    stdout, _, _ = scan(es_url, "--index", index)
    assert located(stdout) == {(index, f"chunk-{i}", "emb") for i in range(3)}


def test_incremental_run_reads_only_new_documents(server: str, uid: str, tmp_path) -> None:
    index = f"logs-inc-{uid}"
    state = tmp_path / "state.db"
    first = log_docs(120, seed=2)
    plants1, planted1 = plant_log_docs(120, seed=11)
    bulk(server, index, first + plants1)
    stdout, stderr, _ = scan(server, "--index", index, "--state", str(state))
    assert walked(stderr) == 123
    assert located(stdout) == {(index, d, f) for d, f in planted1}
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600

    # New documents, two of them sharing the newest millisecond already seen (the tie-breaker's case).
    newest = max(d["@timestamp"] for _, d in first + plants1)
    plants2, planted2 = plant_log_docs(500, seed=12)
    later = log_docs(20, seed=3, start=400)
    tie = log_docs(2, seed=4)
    for _, d in tie:
        d["@timestamp"] = newest
    bulk(server, index, later + plants2 + [(f"tie-{i}", d) for i, (_, d) in enumerate(tie)])
    stdout, stderr, _ = scan(server, "--index", index, "--state", str(state))
    assert walked(stderr) == 20 + 3 + 2
    assert located(stdout) == {(index, d, f) for d, f in planted2}

    _, stderr, code = scan(server, "--index", index, "--state", str(state))
    assert walked(stderr) == 0
    assert code == 0


def test_two_slices_cover_every_document_exactly_once(server: str, uid: str) -> None:
    index = f"logs-sliced-{uid}"
    rest(server, "PUT", f"/{index}", {"settings": {"number_of_shards": 3, "number_of_replicas": 0}})
    docs = log_docs(1000, seed=9)
    bulk(server, index, docs)
    cluster = Cluster.connect(server)
    (info,) = load_indexes(cluster, index)
    ids = [
        [hit["_id"] for hit in walk_index(cluster, info, slice_id=i, slices=2, page_size=97)]
        for i in range(2)
    ]
    assert ids[0] and ids[1]
    assert len(ids[0]) + len(ids[1]) == len(docs)
    assert set(ids[0]) | set(ids[1]) == {d for d, _ in docs}
    if cluster.has_pit:  # the scroll path too, where PIT is the default
        scrolled = [
            [h["_id"] for h in walk_index(cluster, info, slice_id=i, slices=2, use_pit=False)]
            for i in range(2)
        ]
        assert sorted(scrolled[0] + scrolled[1]) == sorted(d for d, _ in docs)


def test_sliced_cli_workers_as_pods_and_as_processes(server: str, uid: str, tmp_path) -> None:
    index = f"logs-pods-{uid}"
    docs = log_docs(200, seed=5)
    plants, planted = plant_log_docs(200, seed=21)
    bulk(server, index, docs + plants)
    seen: set[tuple[str, str, str]] = set()
    total = 0
    for pod in range(2):  # two Indexed Job pods: the slice comes from JOB_COMPLETION_INDEX
        proc = run_cli(
            "es", "scan", "--url", server, "--index", index, "--slices", "2", "--format", "jsonl",
            "--state", str(tmp_path / f"pod{pod}.db"), env={"JOB_COMPLETION_INDEX": str(pod)},
        )  # fmt: skip
        assert proc.returncode in (0, 3), proc.stderr.decode()
        total += walked(proc.stderr)
        seen |= located(proc.stdout)
    assert total == 203
    assert seen == {(index, d, f) for d, f in planted}
    stdout, stderr, _ = scan(server, "--index", index, "--slices", "2")  # two local processes
    assert walked(stderr) == 203
    assert located(stdout) == {(index, d, f) for d, f in planted}


def test_since_and_query_restrict_the_walk(server: str, uid: str) -> None:
    index = f"logs-q-{uid}"
    plants, planted = plant_log_docs(0, seed=31)
    bulk(server, index, log_docs(50, seed=6, start=10) + plants)
    stdout, stderr, _ = scan(
        server, "--index", index, "--query", '{"ids": {"values": ["plant-b64be-31", "log-6-1"]}}'
    )
    assert walked(stderr) == 2
    assert located(stdout) == {(index, "plant-b64be-31", "payload.vector_b64")}
    _, stderr, _ = scan(server, "--index", index, "--since", "1m")  # the test data is dated 2026-11-26 08:00
    assert walked(stderr) in (0, 53)  # 0 unless this runs within a minute of that fixed date


def test_source_reports_missing_index_and_sample(server: str, uid: str) -> None:
    index = f"logs-sample-{uid}"
    bulk(server, index, log_docs(40, seed=8))
    cluster = Cluster.connect(server)
    source = EsSource(cluster, index, sample=7)
    list(source.records())
    assert source.stats.docs == 7
    diags = [d for d in EsSource(cluster, f"nothing-here-{uid}-*").records() if not hasattr(d, "data")]
    assert [d.kind for d in diags] == ["es-no-index"]


@pytest.mark.parametrize("bad", ["{not json", "[1, 2]"])
def test_bad_query_is_a_usage_error(bad: str) -> None:
    proc = run_cli("es", "scan", "--url", "http://127.0.0.1:1", "--index", "x", "--query", bad)
    assert proc.returncode == 2
    assert b"--query" in proc.stderr


def test_alert_sink_indexes_ecs_alerts_with_a_template(server: str, uid: str) -> None:
    index = f"logs-sink-{uid}"
    plants, planted = plant_log_docs(0, seed=41)
    bulk(server, index, log_docs(30, seed=4) + plants)
    scheme = "elasticsearch" if flavor_of(server) == "elasticsearch" else "opensearch"
    stdout, _, _ = scan(server, "--index", index, "--output", f"{scheme}:{server}")
    sent = {a["event"]["id"] for a in alerts(stdout)}
    assert sent
    rest(server, "POST", "/vecleak-alerts-*/_refresh")
    template = rest(server, "GET", "/_index_template/vecleak-alerts")
    assert template["index_templates"][0]["index_template"]["index_patterns"] == ["vecleak-alerts-*"]
    found = rest(
        server,
        "POST",
        "/vecleak-alerts-*/_search",
        {"size": 100, "query": {"term": {"vecleak.location.index": index}}},
    )
    docs = [h["_source"] for h in found["hits"]["hits"]]
    assert {d["event"]["id"] for d in docs} == sent
    assert {(d["vecleak"]["location"]["id"], d["vecleak"]["location"]["field"]) for d in docs} == planted
    mapping = rest(server, "GET", f"/{found['hits']['hits'][0]['_index']}/_mapping")
    props = next(iter(mapping.values()))["mappings"]["properties"]
    assert props["vecleak"]["properties"]["location"]["properties"]["id"]["type"] == "keyword"
