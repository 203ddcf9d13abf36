"""The digit phase of the word search (issue #3): shapes, seeds, and recovery with the real model."""

import pytest

from scanner.inversion import digits


def test_seed_keeps_found_groups_when_the_counts_match():
    # An SSN-shaped guess seeds the phone one group from right, not a flow that makes a year.
    assert digits.seed((3, 3, 4), "555867196", ["555", "86", "7196"]) == ["555", "867", "7196"]
    assert digits.seed((4, 4, 4, 4), "1111100214111", ["1", "1111", "0021", "411"])[1:3] == ["1111", "0021"]


def test_seed_flows_digits_when_the_counts_differ():
    groups = digits.seed((3, 3, 4), "0711688919", ["0711", "6889", "19"][:2])
    assert groups == ["071", "168", "8919"]
    assert all(1 <= len(g) <= 3 for g in digits.seed((None,) * 4, "1012076"))


def test_variants_are_one_digit_edits():
    fixed = digits.variants("530", free=False)
    assert len(fixed) == 27 and "531" in fixed and "530" not in fixed
    free = digits.variants("53", free=True, max_len=3)
    assert {"5", "3", "153", "503", "539"} <= set(free)
    assert all(len(v) <= 3 for v in free)


@pytest.fixture(scope="module")
def inverter():
    pytest.importorskip("torch")
    from scanner import inversion

    return inversion.Inverter(device="cpu", budget=400, threads=2)


def test_digit_phase_recovers_a_phone_number_when_the_words_are_right(inverter):
    """With the context settled, near-miss groups (what the word search leaves) walk to the number."""
    truth = "call me at 555-867-5309 tomorrow morning"
    target = inverter.encoder.embed_texts([truth])[0]
    out = inverter.search.refine_digits(target, "call me at 555 866 0691 tomorrow morning", budget=900)
    assert "555-867-5309" in out.words
    assert out.cosine > 0.999
    assert out.evaluations <= 900
    text = inverter.text_of(out.ids)
    assert "555-867-5309" in text  # printed as the PII shape, re-tokenising to what was scored
    assert inverter.encoder.tokenize(text) == list(out.ids)


def test_texts_without_digits_skip_the_digit_phase(inverter):
    target = inverter.encoder.embed_texts(["reset my password"])[0]
    out = inverter.search.run(target)
    assert out.evaluations <= 400 + inverter.search.cfg.prune_budget + 64
    assert not any(any(c.isdigit() for c in w) for w in out.words)
