"""Attribution on real fixture vectors and local MiniLM outputs, held out where the data allows.

In-sample checks (a vector scored by a signature built with it) are marked as such; the held-out
checks rebuild the signature without the vector (leave-one-out) or use texts the MiniLM signature
never saw.
"""

from __future__ import annotations

import numpy as np
import pytest
from fingerprint_support import COHERE_LIGHT, MINILM, minilm, needs_fixtures, real_vectors, unit

from scanner.fingerprint import Fingerprinter, SourceAggregator, confirm, default_fingerprinter, reftext
from scanner.fingerprint.signature import build_signature
from scanner.model import ModelGuess

COMMON_DIMS = (128, 256, 384, 512, 768, 1024, 1536, 3072, 4096)


@pytest.fixture(scope="module")
def fp() -> Fingerprinter:
    return default_fingerprinter()


def family(fp: Fingerprinter, model: str) -> str:
    return fp.catalog.get(model).family


def loo(fp: Fingerprinter, model: str, vectors: np.ndarray, i: int) -> Fingerprinter:
    sigs = dict(fp.signatures)
    rest = np.delete(vectors, i, axis=0)
    if len(rest):
        sigs[model] = build_signature(model, rest)
    else:
        sigs.pop(model)
    return Fingerprinter(fp.catalog, sigs)


@needs_fixtures
def test_every_real_fixture_vector_in_sample_gets_its_model(fp):
    """In-sample (circular): the signature contains the vector. Guards the data files, not generalisation."""
    for model, items in real_vectors().items():
        for name, v in items:
            guesses = fp.guess(v.astype(np.float32))
            assert guesses and guesses[0].model == model, (name, guesses[:1])


@needs_fixtures
def test_real_fixture_vectors_held_out_are_right_or_unknown(fp):
    right = total = 0
    for model, items in real_vectors().items():
        vectors = np.array([v for _, v in items])
        for i in range(len(vectors)):
            guesses = loo(fp, model, vectors, i).guess(vectors[i].astype(np.float32))
            total += 1
            if guesses:
                assert family(fp, guesses[0].model) == family(fp, model), (model, guesses[0])
                right += guesses[0].model == model
            if len(vectors) >= 6:  # enough left to build on: ada-002 (9), Cohere light (6)
                assert guesses and guesses[0].model == model
    assert right >= total * 0.6


@needs_fixtures
def test_every_real_fixture_vector_with_its_context_hint_held_out(fp):
    """With the model name printed next to it (as in the payload) every fixture vector is attributed,
    even the ones whose model then has no signature left (one-vector models)."""
    from fingerprint_support import FIXTURES

    from scanner.fingerprint.extract import scan_bytes

    for model, items in real_vectors().items():
        vectors = np.array([v for _, v in items])
        for i, (name, _) in enumerate(items):
            found, _ = scan_bytes((FIXTURES / name).read_bytes())
            hint = next((f.hints for f in found if f.hints), {}) or {"model": model.split("/", 1)[1]}
            guesses = loo(fp, model, vectors, i).guess(vectors[i].astype(np.float32), None, hint)
            assert guesses and family(fp, guesses[0].model) == family(fp, model), (name, hint, guesses[:1])


@needs_fixtures
def test_tei_128_dim_minilm_output_is_minilm_truncated_from_384(fp):
    ((name, v),) = real_vectors("test")[MINILM]
    guesses = fp.guess(v.astype(np.float32))
    assert guesses[0].model == MINILM and guesses[0].truncated_from == 384


@needs_fixtures
def test_minilm_and_cohere_light_384_are_told_apart(fp):
    """Both 384-d and unit-norm. MiniLM: held-out texts; Cohere: leave-one-out."""
    texts = tuple(reftext.test_texts(80))
    mini = fp.guess_batch(minilm(texts))
    tops = [g[0].model if g else "unknown" for g in mini]
    assert COHERE_LIGHT not in tops
    assert tops.count(MINILM) >= 0.9 * len(tops)
    cohere = np.array([v for _, v in real_vectors()[COHERE_LIGHT]])
    for i in range(len(cohere)):
        guesses = loo(fp, COHERE_LIGHT, cohere, i).guess(cohere[i].astype(np.float32))
        assert guesses[0].model == COHERE_LIGHT
    # and without the precision tell: Cohere values pushed off fp16 still do not look like MiniLM
    off16 = unit(cohere + np.float32(1e-7))
    for i in range(len(off16)):
        guesses = loo(fp, COHERE_LIGHT, cohere, i).guess(off16[i])
        assert not guesses or guesses[0].model == COHERE_LIGHT


@pytest.mark.parametrize("dim", COMMON_DIMS)
def test_random_unit_vectors_are_attributed_to_no_model(fp, dim):
    rng = np.random.default_rng(dim)
    x = unit(rng.standard_normal((1000, dim)))
    attributed = sum(1 for g in fp.guess_batch(x) if g)
    assert attributed <= 10  # >= 99 % unknown


def _noisy(v: np.ndarray, cos: float, rng) -> np.ndarray:
    u = v / np.linalg.norm(v)
    z = rng.standard_normal(v.shape)
    z -= (z @ u) * u
    return (cos * u + np.sqrt(1 - cos**2) * z / np.linalg.norm(z)).astype(np.float32)


@needs_fixtures
def test_noisy_and_truncated_vectors_never_get_a_wrong_model_with_confidence(fp):
    rng = np.random.default_rng(7)
    cases = []
    for model, items in real_vectors().items():
        vectors = np.array([v for _, v in items])
        for i in range(len(vectors)):
            cases.append((model, vectors[i].astype(np.float32), loo(fp, model, vectors, i)))
    for v in minilm(tuple(reftext.test_texts(40))):
        cases.append((MINILM, v, fp))
    kept = 0
    for model, v, f in cases:
        variants = [_noisy(v, c, rng) for c in (0.9, 0.7, 0.5)]
        variants += [unit(v[:d]) for d in (128, 256, 512) if d < v.shape[0]]
        for w in variants:
            guesses = f.guess(w)
            if guesses and guesses[0].model != model:
                assert family(fp, guesses[0].model) == family(fp, model) or guesses[0].confidence < 0.5, (
                    model,
                    guesses[0],
                )
            kept += bool(guesses) and guesses[0].model == model
    assert kept > 0.5 * len(cases)


def test_bad_vectors_are_unknown_not_errors(fp):
    assert fp.guess(np.zeros(384, dtype=np.float32)) == []
    nan = np.full(384, np.nan, dtype=np.float32)
    assert fp.guess(nan) == []
    assert fp.guess(np.ones(8, dtype=np.float32)) == []
    big = np.full(1536, 3e38, dtype=np.float32)
    assert fp.guess(big) == []


def test_guess_batch_matches_guess_row_by_row(fp):
    x = minilm(tuple(reftext.test_texts(12)))
    batch = fp.guess_batch(x)
    assert batch == [fp.guess(v) for v in x]


def test_hint_names_a_model_without_a_signature(fp):
    rng = np.random.default_rng(3)
    v = unit(rng.standard_normal(768))
    assert fp.guess(v) == []
    guesses = fp.guess(v, "f32", {"model": "nomic-embed-text"})
    assert guesses[0].model == "nomic-ai/nomic-embed-text-v1.5"
    assert any("seen next to the vector" in r for r in guesses[0].reasons)
    # a name that does not fit the size is reported, not believed
    odd = fp.guess(v, "f32", {"model": "text-embedding-3-large"})
    assert all(g.model != "openai/text-embedding-3-large" or g.truncated_from == 3072 for g in odd)


def test_hint_does_not_override_strong_contrary_evidence(fp):
    x = minilm(tuple(reftext.test_texts(10)))
    wrong_hint = fp.guess_batch(x, None, {"model": "embed-english-light-v3.0"})
    tops = [g[0].model for g in wrong_hint if g]
    assert tops.count(MINILM) >= 7


def test_pooled_evidence_from_one_source(fp):
    rng = np.random.default_rng(11)
    x = minilm(tuple(reftext.test_texts(30)))
    weak = np.array([_noisy(v, 0.6, rng) for v in x])
    single = [g[0].model if g else "unknown" for g in fp.guess_batch(weak)]
    agg = SourceAggregator(fp)
    agg.add(weak[:15])
    agg.add(weak[15:])
    pooled = agg.result()
    assert pooled[0].model == MINILM and pooled[0].confidence > 0.9
    assert single.count(MINILM) < len(single)  # pooling adds something a single vector lacks
    noise = SourceAggregator(fp)
    noise.add(unit(rng.standard_normal((50, 384))))
    assert noise.result() == []


def test_round_trip_confirmation():
    guesses = [ModelGuess("a/x", 0.6), ModelGuess(MINILM, 0.3, ("r",))]
    out = confirm(guesses, MINILM, 0.93)
    assert out[0].model == MINILM and out[0].confirmed and out[0].confidence >= 0.99
    assert any("round trip" in r for r in out[0].reasons) and out[1].model == "a/x"
    assert confirm(guesses, MINILM, 0.85) == guesses
    fresh = confirm([], MINILM, 0.95)
    assert fresh[0].confirmed and fresh[0].model == MINILM


@needs_fixtures
def test_tei_fixture_round_trip_under_local_minilm(fp):
    """The TEI snapshot embeds the text 'test' (router/tests/test_http_embed.rs): re-embedding it
    locally and cutting to 128 dims reproduces the leaked vector, so the model is confirmed."""
    ((_, leaked),) = real_vectors("test")[MINILM]
    local = minilm(("test",))[0][:128]
    cosine = float(unit(local) @ unit(leaked.astype(np.float32)))
    out = confirm(fp.guess(leaked.astype(np.float32)), MINILM, cosine)
    assert cosine >= 0.99 and out[0].confirmed and out[0].truncated_from == 384


def test_reference_and_test_texts_do_not_overlap():
    assert not set(reftext.reference_texts()) & set(reftext.test_texts())


def test_short_real_tickets_and_queries_are_minilm(fp):
    """The demo's support tickets and search queries (never in the signature's texts): the density
    check names MiniLM for every one, including queries nearly orthogonal to its mean direction."""
    from scanner.demo import demo_texts

    texts = tuple(t.text for t in demo_texts())
    assert not set(texts) & set(reftext.reference_corpus("signature"))
    tops = [g[0].model if g else "unknown" for g in fp.guess_batch(minilm(texts))]
    assert tops == [MINILM] * len(texts)


def test_held_out_corpus_texts_of_every_style_are_minilm(fp):
    texts = tuple(reftext.reference_corpus("heldout")[:300])
    tops = [g[0].model if g else "unknown" for g in fp.guess_batch(minilm(texts))]
    assert tops.count(MINILM) >= 0.97 * len(texts)
    assert set(tops) <= {MINILM, "unknown"}
    # cut to 256 dims downstream (TEI ``dimensions``, slicing): the prefix has its own density check
    cut = fp.guess_batch(unit(minilm(texts)[:, :256]))
    assert [g[0].model if g else "unknown" for g in cut].count(MINILM) >= 0.95 * len(texts)
    assert all(g[0].truncated_from == 384 for g in cut if g)


def test_density_check_survives_save_and_load(tmp_path):
    from scanner.fingerprint.signature import load_signature, save_signature

    rng = np.random.default_rng(5)
    base = unit(rng.standard_normal(64))
    x = unit(base + 0.8 * rng.standard_normal((1200, 64)) * np.linspace(2, 0.1, 64))
    sig = build_signature("sentence-transformers/all-MiniLM-L6-v2", x)
    assert sorted(sig.density) == [64]  # the native size only: no prefix of 128 dims or more
    assert sig.density[64][1][2] > 3  # held-out outputs score well above random unit vectors (z = 0)
    back = load_signature(save_signature(sig, tmp_path))
    assert sorted(back.density) == [64] and np.array_equal(back.density[64][0], sig.density[64][0])
    small = load_signature(save_signature(build_signature("a/b", x[:50]), tmp_path))
    assert not small.has_density
