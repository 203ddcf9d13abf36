"""The benchmark's text metrics (issue #3), shared by bench/inversion.py and the decoder's training."""

import pytest

from scanner.inversion.metrics import norm, token_f1


@pytest.mark.parametrize(
    ("pred", "ref", "f1"),
    [
        ("The cat sat.", "the cat sat", 1.0),  # case and punctuation do not count
        ("sat cat the", "the cat sat", 1.0),  # nor order: F1 is over sets of words
        ("cat dog", "cat bird", 0.5),
        ("cat cat cat", "cat dog", 2 / 3),  # repeats do not count either
        ("", "", 1.0),
        ("cat", "", 0.0),
        ("dog", "cat", 0.0),
    ],
)
def test_token_f1(pred, ref, f1):
    assert token_f1(pred, ref) == pytest.approx(f1)


def test_exact_match_ignores_case_and_spacing_only():
    assert norm("  Hi   There ") == norm("hi there")
    assert norm("hi there.") != norm("hi there")
