"""Pooled per-source evidence on the scan path (``SourcePool`` in the engine).

The vectors are real MiniLM outputs of held-out test texts, pushed towards random by isotropic noise
(cosine 0.6 to the original) so that most of them are too weak to name a model on their own.
"""

from __future__ import annotations

import numpy as np
from fingerprint_support import COHERE_LIGHT, MINILM, minilm, needs_fixtures, real_vectors, unit

from scanner.engine import Engine
from scanner.fingerprint import SourcePool, default_fingerprinter, reftext
from scanner.model import Record, SourceRef
from scanner.pipeline import Pipeline
from scanner.rules import load_rules

POOL_REASON = "pooled with"


def _noisy(x: np.ndarray, cos: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(x.shape)
    z -= np.sum(z * x, axis=1, keepdims=True) * x
    return unit(cos * x + np.sqrt(1 - cos**2) * unit(z))


def _log(vectors: np.ndarray) -> bytes:
    return "".join(f"2026-11-26 DEBUG emb={v.tolist()}\n" for v in vectors).encode()


def _models(engine: Engine, record: Record) -> list[tuple[str, bool]]:
    """(top model or 'unknown', upgraded by the pool) per embedding finding of one record."""
    result = engine.pipeline.scan(record)
    if engine.pool is not None:
        engine.pool.apply(result.findings)
    out = []
    for f in result.findings:
        if f.kind == "embedding":
            top = f.fingerprint[0] if f.fingerprint else None
            out.append(
                (top.model if top else "unknown", bool(top) and any(POOL_REASON in r for r in top.reasons))
            )
    return out


def test_weak_vectors_of_one_source_are_upgraded_within_the_record():
    weak = _noisy(minilm(tuple(reftext.test_texts(24))), 0.6, seed=3)
    src = SourceRef("file", "app.log", "app.log")
    alone = _models(Engine(Pipeline(), load_rules(), [], pool=False), Record(_log(weak), src))
    pooled = _models(Engine(Pipeline(), load_rules(), [], pool=True), Record(_log(weak), src))
    assert len(alone) == len(pooled) == len(weak)
    assert [m for m, _ in alone].count(MINILM) < len(weak) // 2  # weak on their own
    assert [m for m, _ in pooled].count(MINILM) > [m for m, _ in alone].count(MINILM) + 4
    assert {m for m, _ in pooled} <= {MINILM, "unknown"}
    assert any(up for _, up in pooled) and not any(up for _, up in alone)


def test_pool_carries_over_records_of_one_source_but_not_to_other_sources():
    weak = _noisy(minilm(tuple(reftext.test_texts(30))), 0.6, seed=4)
    engine = Engine(Pipeline(), load_rules(), [])
    src, other = SourceRef("file", "a.log", "a.log"), SourceRef("file", "b.log", "b.log")
    _models(engine, Record(_log(weak[:20]), src))
    later = _models(engine, Record(_log(weak[20:25]), src))  # a later block: earlier evidence counts
    elsewhere = _models(engine, Record(_log(weak[25:27]), other))  # too few vectors in its own source
    assert sum(up for _, up in later) >= 1
    assert not any(up for _, up in elsewhere)


def test_random_vectors_are_not_pooled_into_a_model():
    rng = np.random.default_rng(9)
    noise = unit(rng.standard_normal((60, 384)))
    engine = Engine(Pipeline(), load_rules(), [])
    got = _models(engine, Record(_log(noise), SourceRef("file", "r.log", "r.log")))
    assert sum(m != "unknown" for m, _ in got) <= 1
    # ... nor upgraded when they sit among real MiniLM outputs of the same source
    mixed = np.vstack([minilm(tuple(reftext.test_texts(20))), noise[:20]])
    got = _models(engine, Record(_log(mixed), SourceRef("file", "m.log", "m.log")))
    assert [m for m, _ in got[:20]].count(MINILM) == 20
    assert sum(m != "unknown" for m, _ in got[20:]) <= 1


@needs_fixtures
def test_cohere_vectors_among_minilm_are_not_upgraded_to_minilm():
    cohere = np.array([v for _, v in real_vectors()[COHERE_LIGHT]], dtype=np.float32)
    off16 = unit(cohere + np.float32(1e-7))  # without the fp16 tell
    mixed = np.vstack([minilm(tuple(reftext.test_texts(20))), off16])
    got = _models(Engine(Pipeline(), load_rules(), []), Record(_log(mixed), SourceRef("file", "c", "c")))
    assert all(m != MINILM for m, _ in got[20:])


def test_engine_upgrades_before_the_rules_run():
    weak = _noisy(minilm(tuple(reftext.test_texts(24))), 0.6, seed=5)
    engine = Engine(Pipeline(), load_rules(), [])
    alerts = engine.feed(Record(_log(weak), SourceRef("file", "e.log", "e.log")))
    pooled = [a for a in alerts if a.finding.model and any(POOL_REASON in r for r in a.finding.model.reasons)]
    assert (
        pooled and engine.pool is not None and engine.pool.upgraded >= len({a.finding.sha256 for a in pooled})
    )


def test_pool_memory_is_bounded():
    pool = SourcePool(default_fingerprinter(), max_sources=2)
    v = minilm(tuple(reftext.test_texts(3)))
    pipeline = Pipeline()
    for name in ("a", "b", "c"):
        pool.apply(pipeline.scan(Record(_log(v), SourceRef("file", name, name))).findings)
    assert len(pool._sources) == 2


def test_the_pipelines_evidence_is_reused_and_gives_the_same_upgrades():
    from scanner.fingerprint.scoring import EVIDENCE_MEMO

    weak = _noisy(minilm(tuple(reftext.test_texts(24))), 0.6, seed=3)
    src = SourceRef("file", "app.log", "app.log")
    reused = Pipeline().scan(Record(_log(weak), src)).findings
    recomputed = Pipeline().scan(Record(_log(weak), src)).findings
    assert all(EVIDENCE_MEMO in f._memo for f in reused)
    for f in recomputed:
        del f._memo[EVIDENCE_MEMO]  # as for findings from another batch: the pool computes it
    assert SourcePool().apply(reused) == SourcePool().apply(recomputed) > 4
    assert not any(EVIDENCE_MEMO in f._memo for f in reused)  # consumed, not kept
    assert [f.fingerprint for f in reused] == [f.fingerprint for f in recomputed]
