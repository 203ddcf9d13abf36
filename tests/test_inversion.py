"""Real model, real search: tiny budgets keep these fast on 2 CPU cores."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import default_sigint, gone, pool_workers

pytest.importorskip("torch")

from scanner import inversion  # noqa: E402
from scanner.inversion.match import KnownTextMatcher  # noqa: E402
from scanner.inversion.models import DEFAULT_MODEL, load_encoder, resolve  # noqa: E402


@pytest.fixture(scope="module")
def enc():
    return load_encoder(DEFAULT_MODEL, "cpu", threads=2)


@pytest.fixture(scope="module")
def inverter():
    return inversion.Inverter(DEFAULT_MODEL, device="cpu", budget=400)


def test_available_without_importing_torch_at_module_import():
    code = "import sys, scanner.inversion as i; assert 'torch' not in sys.modules; print(i.available())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_replica_matches_sentence_transformers(enc):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(resolve(DEFAULT_MODEL).path), device="cpu")
    texts = ["Hi, this is Mike Green, my email is mike.green@gmail.com", "ok", "long text " * 300]
    cos = (enc.embed_texts(texts) * st.encode(texts, normalize_embeddings=False)).sum(axis=1)
    assert np.all(cos > 0.9999)


def test_detokenize_round_trips(enc):
    text = "call me at 555-867-5309, email mike.green@gmail.com (3.5% off)"
    ids = enc.tokenize(text)
    shown = inversion.detokenize(enc.tokenizer.convert_ids_to_tokens(ids))
    assert enc.tokenize(shown) == ids
    assert "mike.green@gmail.com" in shown and "555-867-5309" in shown


def test_short_text_inverts(enc, inverter):
    vec = enc.embed_texts(["reset my password"])[0]
    result = inverter.invert(vec)
    assert result.cosine >= 0.9
    assert {"reset", "password"} <= set(result.text.split())
    assert result.evaluations <= 400 + 64  # the budget is honoured (one round may finish)
    row = result.to_dict()
    assert set(row) >= {"text", "cosine", "steps", "seconds", "model", "pii"}


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.ones(100), "dimension 100"),
        (np.zeros(384), "zero vector"),
        (np.full(384, np.nan), "NaN"),
    ],
)
def test_bad_vectors_raise_clear_errors(inverter, bad, message):
    with pytest.raises(inversion.InversionInputError, match=message):
        inverter.invert(bad)


def test_known_text_matching(enc):
    known = ["project nightingale launch date", "mike.green@gmail.com", "quarterly revenue forecast"]
    matcher = KnownTextMatcher(enc, known)
    exact = matcher.match(enc.embed_texts(["project nightingale launch date"])[0])
    assert (exact[0].index, exact[0].relation) == (0, "equal")
    inside = matcher.match(
        enc.embed_texts(["the project nightingale launch date is march 3, keep it quiet"])[0]
    )
    assert (inside[0].index, inside[0].relation) == (0, "contains")
    unrelated = matcher.match(enc.embed_texts(["how do i bake bread"])[0])
    assert all(m.relation == "none" for m in unrelated)


def test_cli_contract(enc, tmp_path):
    vecs = enc.embed_texts(["reset my password"])
    lines = [json.dumps(vecs[0].tolist()), json.dumps([0.0] * 384), "[0.1, 0.2, 0.3", json.dumps([1.0] * 10)]
    path = tmp_path / "vectors.jsonl"
    path.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    cmd = [sys.executable, "-m", "scanner", "invert", str(path), "--model", DEFAULT_MODEL, "--device", "cpu"]
    out = subprocess.run([*cmd, "--reveal", "--budget", "200"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(x) for x in out.stdout.splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 3, 4]
    assert rows[0]["cosine"] > 0.85 and "password" in rows[0]["text"]
    assert {"text", "cosine", "seconds", "model", "pii"} <= set(rows[0])
    assert all("error" in r for r in rows[1:])
    assert "0.1" not in out.stdout  # raw vectors are never echoed


def test_cli_jobs_give_the_serial_output_in_order(enc, tmp_path):
    # Two workers, one torch thread each, against one process with one thread: the same search,
    # so the same lines, in input order, bad lines in their places and known strings matched.
    vecs = enc.embed_texts(["reset my password", "where is my order", "call anna lee today"])
    lines = [json.dumps(vecs[0].tolist()), "[0.1, 0.2", json.dumps(vecs[1].tolist())]
    lines += [json.dumps([0.0] * 384), json.dumps(vecs[2].tolist())]
    path = tmp_path / "vectors.jsonl"
    path.write_text("\n".join(lines) + "\n")
    known = tmp_path / "known.txt"
    known.write_text("anna lee\nwhere is my order\n")
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    cmd = [sys.executable, "-m", "scanner", "invert", str(path), "--device", "cpu", "--budget", "150"]
    cmd += ["--reveal", "--known", str(known)]

    def rows(*extra: str) -> list[dict]:
        out = subprocess.run([*cmd, *extra], capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr
        got = [json.loads(x) for x in out.stdout.splitlines()]
        for r in got:
            r.pop("seconds", None)
        return got

    serial, parallel = rows("--threads", "1"), rows("--jobs", "2", "--threads", "2")
    assert parallel == serial
    assert [r["line"] for r in parallel] == [1, 2, 3, 4, 5]
    assert ["error" in r for r in parallel] == [False, True, False, True, False]
    assert parallel[2]["known"][0]["index"] == 1 and parallel[2]["known"][0]["relation"] == "equal"


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, -signal.SIGTERM)])
def test_cli_jobs_workers_stop_with_the_run(enc, tmp_path, sig, code):
    # Ctrl-C stops the workers mid-vector; a parent killed outright (SIGTERM) leaves none behind
    # waiting forever with a model in memory.
    texts = ["where is my order"] + ["my name is sarah johnson and i need help with my account"] * 4
    path = tmp_path / "vectors.jsonl"
    path.write_text("\n".join(json.dumps(v.tolist()) for v in enc.embed_texts(texts)) + "\n")
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    cmd = [sys.executable, "-m", "scanner", "invert", str(path), "--device", "cpu", "--jobs", "2"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, preexec_fn=default_sigint
    )
    try:
        assert proc.stdout.readline()  # the first vector is out: the workers are busy with the rest
        workers = pool_workers(proc.pid)
        assert len(workers) == 2
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == code
        assert all(gone(pid, 10) for pid in workers)
    finally:
        proc.kill()
        proc.wait()


def test_cli_redacts_by_default(enc, tmp_path):
    # A vector whose reconstruction starts from the PII-bearing text itself is not needed here:
    # redaction is a property of the output path, checked on a known result.
    result = inversion.InversionResult("mail mike.green@gmail.com", 1.0, 1, 1, 0.1, DEFAULT_MODEL)
    from scanner.pii import find_pii

    result.pii = find_pii(result.text)
    assert result.to_dict()["text"] == "mail m***@gmail.com"
    assert result.to_dict(reveal=True)["pii"] == [{"type": "email", "value": "mike.green@gmail.com"}]


def test_enricher_inverts_confirms_and_masks():
    """The daemon's inversion hook: masked text for alerts, clear text kept apart, model confirmed."""
    import numpy as np

    from scanner.inversion import make_enricher
    from scanner.inversion.models import DEFAULT_MODEL, load_encoder
    from scanner.model import Candidate, Finding, ModelGuess, SourceRef

    vec = load_encoder(DEFAULT_MODEL).embed_texts(["reset my password"])[0].astype(np.float32)
    finding = Finding(
        Candidate(vec, "python-list", 0, 1),
        SourceRef("file", "a", "a"),
        1,
        0,
        0.9,
        (),
        [ModelGuess(DEFAULT_MODEL, 0.6)],
    )
    enricher = make_enricher()
    enricher.budget = 300
    out = enricher.enrich(finding)
    assert out is not None and out["cosine"] >= 0.9
    assert out["text_clear"] and finding.fingerprint[0].confirmed
    unknown = Finding(Candidate(vec, "python-list", 0, 1), SourceRef("file", "a", "a"), 1, 0, 0.9, (), [])
    assert enricher.enrich(unknown) is None  # no model guess: nothing we can run


def test_word_search_recovers_a_sentence_with_a_name(inverter):
    """The whole-word search (default method) gets function words and order, not just content."""
    from scanner.inversion.models import load_encoder

    enc = load_encoder(DEFAULT_MODEL)
    text = "patient john smith was prescribed insulin for diabetes"
    inv = inversion.Inverter(DEFAULT_MODEL, device="cpu", budget=1500)
    result = inv.invert(enc.embed_texts([text])[0])
    assert result.cosine >= 0.99
    assert {"patient", "john", "smith", "insulin", "diabetes"} <= set(result.text.split())
    assert any(it.type == "person" for it in result.pii)


def test_email_units_tokenise_like_the_printed_text(inverter):
    """Email candidates are single units whose ids are exactly the tokeniser's for the address."""
    search = inverter.search
    enc = inverter.encoder
    s = tuple(search.index[w] for w in ("my", "email", "mike", "green"))
    cands = search._email_edits(s)
    texts = {search.words[c[-1]] for c in cands}
    assert "mike.green@gmail.com" in texts
    unit = search.index["mike.green@gmail.com"]
    assert search.word_ids[unit] == tuple(enc.tokenize("mike.green@gmail.com"))


def test_method_switch():
    assert (
        inversion.Inverter(DEFAULT_MODEL, device="cpu", budget=50, method="tokens")
        .invert(load_encoder(DEFAULT_MODEL).embed_texts(["reset my password"])[0])
        .text
    )
    with pytest.raises(ValueError, match="unknown inversion method"):
        inversion.Inverter(DEFAULT_MODEL, device="cpu", method="nope")
