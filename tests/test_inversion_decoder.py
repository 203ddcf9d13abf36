"""The trained first guess (issue #3): adapters, the shipped decoder, its use by the search, and the
training data generators."""

import copy
import logging
import random

import numpy as np
import pytest

from scanner.inversion import decoder, train
from scanner.pii import find_pii
from scanner.wordlists import FIRST_NAMES, SURNAMES


def _tiny_llama():
    torch = pytest.importorskip("torch")
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=97,
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    return torch, LlamaForCausalLM(config).eval()


def test_shipped_adapters_merge_into_the_plain_model():
    """What ``adapter_state`` writes, merged into a plain copy, gives the adapted model's logits."""
    torch, base = _tiny_llama()
    adapted = copy.deepcopy(base)
    params = decoder.attach_adapters(adapted, rank=4, alpha=8.0)
    assert len(params) == 2 * 2 * len(decoder.ADAPTED)  # a, b for 7 layers' worth, 2 blocks
    for p in params:  # b starts at zero; give the update something to carry
        torch.nn.init.normal_(p, std=0.05)
    prefix = decoder.build_prefix(16, 48, hidden=8)
    ids = torch.tensor([[5, 17, 3, 88, 42]])
    with torch.no_grad():
        want = adapted(input_ids=ids).logits
        plain = base(input_ids=ids).logits
        state = decoder.adapter_state(adapted, prefix)
        merged = copy.deepcopy(base)
        assert decoder.merge_adapters(merged, state) == 2 * len(decoder.ADAPTED)
        got = merged(input_ids=ids).logits
    assert (want - plain).abs().max() > 0.01  # the adapters change the output...
    assert torch.allclose(got, want, atol=5e-3)  # ...and the float16 file carries the change
    assert all(v.dtype == torch.float16 for v in state.values())
    assert {k for k in state if k.startswith("prefix.")} == {
        "prefix.up.weight",
        "prefix.up.bias",
        "prefix.out.weight",
        "prefix.out.bias",
    }


@pytest.fixture(scope="module")
def shipped():
    pytest.importorskip("torch")
    reason = decoder.unavailable_reason()
    if reason:
        pytest.skip(reason)
    from scanner.inversion.models import load_encoder

    return decoder.load("cpu"), load_encoder(threads=2)


def test_shipped_decoder_reads_the_vector_it_is_given(shipped):
    """Guesses are conditioned on the vector: each lands nearer its own target than the other's."""
    dec, enc = shipped
    assert dec.meta["encoder"] == enc.spec.model_id
    texts = ["please send the invoice to my email", "the server is down again after the update"]
    targets = enc.embed_texts(texts)
    guesses = dec.hypotheses_batch(list(targets), n=2)
    assert [len(g) for g in guesses] == [2, 2]
    for i, group in enumerate(guesses):
        assert all(g and g == g.lower() for g in group)
        own = float(enc.embed_texts([group[0]])[0] @ targets[i])
        other = float(enc.embed_texts([group[0]])[0] @ targets[1 - i])
        assert own > other + 0.1


def test_missing_or_foreign_weights_turn_the_guess_off(tmp_path, monkeypatch):
    missing = tmp_path / "nope.safetensors"
    monkeypatch.setenv(decoder.WEIGHTS_ENV, str(missing))
    assert decoder.weights_path() == missing
    assert str(missing) in decoder.unavailable_reason()
    assert decoder.load("cpu") is None and decoder.trained_for() is None
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    foreign = tmp_path / "other.safetensors"  # weights trained for another encoder
    save_file(
        {"prefix.up.weight": torch.zeros(2, 2)}, str(foreign), metadata={"vecleak": '{"encoder": "acme/e5"}'}
    )
    monkeypatch.setenv(decoder.WEIGHTS_ENV, str(foreign))
    assert decoder.trained_for() == "acme/e5"
    from scanner import inversion

    assert inversion.Inverter(device="cpu", budget=50, first_guess=True).decoder is None


@pytest.mark.parametrize("content", [b"", b"not safetensors at all", b"\xff" * 8 + b"{"])
def test_a_damaged_weights_file_turns_the_guess_off_with_a_warning(tmp_path, monkeypatch, caplog, content):
    pytest.importorskip("torch")
    from scanner import inversion

    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(content)
    monkeypatch.setenv(decoder.WEIGHTS_ENV, str(damaged))
    with caplog.at_level(logging.WARNING):
        assert inversion.Inverter(device="cpu", budget=50, first_guess=True).decoder is None
    assert "not a readable weights file" in caplog.text


@pytest.fixture(scope="module")
def search():
    pytest.importorskip("torch")
    from scanner import inversion

    return inversion.Inverter(device="cpu", budget=400, threads=2, first_guess=False).search


def test_search_asks_for_a_guess_only_when_stuck_and_keeps_a_better_one(search):
    enc = search.enc
    calls = []

    def guesses(text):
        return lambda: calls.append(text) or [text]

    easy = "how do i reset my password"
    search.cfg.budget, kept_budget = 2500, search.cfg.budget  # the default budget
    try:
        out = search.run(enc.embed_texts([easy])[0], guesses(easy))
    finally:
        search.cfg.budget = kept_budget
    assert out.cosine >= search.cfg.stop_cos and calls == []  # converged alone: never asked

    truth = "the shipment to berlin was delayed because of the storm"
    knobs = ("budget", "kick_budget", "lm_beam", "insert_budget")
    kept = [getattr(search.cfg, k) for k in knobs]
    for k, v in zip(knobs, (60, 0, 0, 0), strict=True):  # too little to find it alone
        setattr(search.cfg, k, v)
    try:
        target = enc.embed_texts([truth])[0]
        alone = search.run(target)
        guided = search.run(target, guesses(truth))
        misled = search.run(target, guesses("boil the pasta for ten minutes in salted water"))
    finally:
        for k, v in zip(knobs, kept, strict=True):
            setattr(search.cfg, k, v)
    assert alone.cosine < search.cfg.kick_below
    assert len(calls) == 2
    assert " ".join(guided.words) == truth and guided.cosine > alone.cosine
    # A wrong guess costs evaluations, never the answer: the best text seen is kept.
    assert misled.cosine >= alone.cosine and "pasta" not in misled.words


def test_pii_clauses_hold_valid_numbers():
    rng = random.Random(1)
    first, last = sorted(FIRST_NAMES), sorted(SURNAMES)
    kinds: dict[str, int] = {}
    for _ in range(400):
        text = train.pii_text(rng, first, last)
        for item in find_pii(text):
            kinds[item.type] = kinds.get(item.type, 0) + 1
        if "card" in text or "charge it" in text:
            assert any(it.type == "credit_card" for it in find_pii(text)), text  # Luhn holds
        if "iban" in text:
            assert any(it.type == "iban" for it in find_pii(text)), text  # mod-97 holds
    assert {"email", "phone", "credit_card", "ssn", "iban", "ip"} <= set(kinds)


def test_generated_samples_are_cut_into_clean_short_sentences():
    raw = (
        "How do I reset the router? It keeps dropping.\n```python\nresult = compute(values)\n```\nOk.\n"
        "Thanks, that fixed it and the connection has been stable since this morning at nine."
    )
    assert train.sentences(raw) == [
        "how do i reset the router?",
        "it keeps dropping.",
        "thanks, that fixed it and the connection has been stable since this morning at nine.",
    ]


def test_corpus_mixes_pii_into_the_sentences_at_the_share_asked():
    rng = random.Random(0)
    sents = [f"sentence number {w} is here" for w in ("one", "two", "three", "four", "five", "six", "seven")]
    texts = train.build_corpus(sents, rng, pii_share=0.3)
    assert set(sents) <= set(texts)
    extra = len(texts) - len(sents)
    assert extra == int(len(sents) * 0.3 / 0.7)
    assert all(len(t.split()) <= 24 for t in texts)
    assert np.mean([bool(find_pii(t)) for t in texts if t not in sents]) > 0.5


def test_first_guess_is_opt_in(shipped):
    from scanner import inversion

    assert inversion.Inverter(device="cpu", budget=50).decoder is None
    opted = inversion.Inverter(device="cpu", budget=50, first_guess=True)
    assert opted.decoder is shipped[0]  # the process-wide copy, loaded once
