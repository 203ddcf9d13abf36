"""The digit phase of the word search (issue #3): shapes, seeds, and recovery with the real model."""

import math

import numpy as np
import pytest

from scanner.inversion import digits
from scanner.pii import find_pii


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


def test_prefixes_enumerate_the_leading_digits_and_keep_the_rest():
    fixed = digits.prefixes("5309", 2, free=False)
    assert len(fixed) == 99 and "0009" in fixed and "9909" in fixed and "5309" not in fixed
    assert all(v.endswith("09") and len(v) == 4 for v in fixed)
    quad = digits.prefixes("7", 2, free=True)  # a dotted quad's short group: every 1-2 digit value
    assert "12" in quad and "0" in quad and "7" not in quad and "07" not in quad


def test_group_values_cover_every_value_of_a_group():
    three = digits.group_values("867", quad=False)
    assert len(three) == 999 and "555" in three and "000" in three and "867" not in three
    four = digits.group_values("5309", quad=False)  # the leading three enumerated, the last kept
    assert len(four) == 999 and "1129" in four and all(v.endswith("9") for v in four)
    assert digits.tail_values("1129") == [f"112{d}" for d in "012345678"]
    quad = digits.group_values("7", quad=True)
    assert len(quad) == 255 and "255" in quad and "256" not in quad and "7" not in quad


def test_transpositions_exchange_digits_across_groups_and_keep_the_shape():
    swaps = digits.transpositions(["555", "869", "5307"])
    assert ["555", "867", "5309"] in swaps
    assert all([len(g) for g in gs] == [3, 3, 4] for gs in swaps)
    assert len(swaps) == len({tuple(gs) for gs in swaps}) == 45 - 6  # the four 5s not exchanged


def test_block_exchanges_move_runs_of_digits_and_keep_the_shape():
    moves = digits.block_exchanges(["415", "019", "5558"])
    assert ["415", "555", "0198"] in moves  # ``555`` moved in front of ``019``
    assert all([len(g) for g in gs] == [3, 3, 4] for gs in moves)
    assert ["415", "019", "5558"] not in moves
    assert len(moves) == len({tuple(gs) for gs in moves})
    flat = "4150195558"
    assert all(sorted("".join(gs)) == sorted(flat) for gs in moves)  # the same digits, moved
    assert all(len(gs) == 3 for gs in digits.block_exchanges(["415", "019", "5558"], max_block=1))
    assert len(digits.block_exchanges(["415", "019", "5558"], max_block=1)) < len(moves)


def test_twin_values_switch_a_phone_and_an_ssn_in_the_middle_group_only():
    twin, values = digits.twin_values((3, 2, 4), "-", 1)
    assert twin == (3, 3, 4) and len(values) == 1000 and "867" in values
    assert digits.twin_values((3, 3, 4), "-", 1)[1][:2] == ["00", "01"]
    assert digits.twin_values((3, 2, 4), "-", 2) == ((3, 2, 4), [])
    assert digits.twin_values((4, 4, 4, 4), " ", 1) == ((4, 4, 4, 4), [])


def test_luhn_repairs_are_one_digit_changes_that_pass_the_check():
    from scanner.pii import luhn_ok

    found = ["4111", "1111", "1119", "1111"]  # one digit off the test Visa: fails Luhn
    repairs = digits.luhn_repairs(found)
    assert ["4111", "1111", "1111", "1111"] in repairs
    assert len(repairs) == 16  # exactly one passing value at each position
    for gs in repairs:
        flat = "".join(gs)
        assert luhn_ok(flat) and [len(g) for g in gs] == [4, 4, 4, 4]
        assert sum(a != b for a, b in zip(flat, "".join(found), strict=True)) == 1
    assert digits.luhn_repairs(["4111", "1111", "1111", "1111"]) == []  # passes already
    assert digits.luhn_repairs(["555", "867", "5309"]) == []  # not card-length


def test_iban_shapes_follow_the_country_length_and_edits_keep_the_country_code():
    assert digits.iban_lengths("de") == (2, 4, 4, 4, 4, 2)  # de50 5260 1815 9083 0166 13: 22 chars
    assert digits.iban_lengths("FR") == (2, 4, 4, 4, 4, 4, 3)  # 27
    assert {"DE", "ES", "FR"} <= digits.IBAN_NUMERIC and "GB" not in digits.IBAN_NUMERIC  # GB: bank letters
    assert digits.head("de50") == "de" and digits.head("5260") == ""
    assert all(v.startswith("de") and v[2:].isdigit() for v in digits.variants("de50", False))
    assert "de49" in digits.group_values("de50", False) and len(digits.group_values("de50", False)) == 99
    iban = ["de50", "5260", "1815", "9083", "0166", "13"]
    for moved in digits.transpositions(iban) + digits.block_exchanges(iban):
        assert moved[0][:2] == "de" and [len(g) for g in moved] == [4, 4, 4, 4, 4, 2]


def test_iban_seed_reads_the_found_digits_as_the_account():
    from scanner.pii import iban_ok

    # The word search finds the account's groups, never the ``##50`` glued to ``de``.
    assert digits.iban_seed("de", "526018159083016613") == ["de50", "5260", "1815", "9083", "0166", "13"]
    short = digits.iban_seed("es", "18609139")  # too few digits: padded, still a valid IBAN
    assert iban_ok("".join(short)) and [len(g) for g in short] == [4, 4, 4, 4, 4, 4]


def test_an_iban_is_printed_with_the_check_digits_its_account_calls_for():
    from scanner.pii import iban_ok

    # Whatever check digits a search left in the first group, the printed IBAN passes mod-97.
    assert digits.render(["de00", "5260", "1815", "9083", "0166", "13"], " ") == "de50 5260 1815 9083 0166 13"
    assert iban_ok(digits.render(["de50", "5260", "1815", "9083", "0166", "14"], " "))
    assert digits.render(["555", "867", "5309"], "-") == "555-867-5309"  # other numbers as they are


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


def test_digit_phase_shapes_an_iban_around_a_loose_country_code(inverter):
    """The word search leaves the country code as a word (``de``) and the account as loose groups,
    never the check digits glued to the code (``##50``); the IBAN shape joins the code to check
    digits computed from the account. Printed as the IBAN, it is recognised as one."""
    truth = "please wire the deposit to iban de50 5260 1815 9083 0166 13 today"
    target = inverter.encoder.embed_texts([truth])[0]
    start = "please wire the deposit to iban de 5260 1815 9083 0166 13 today"
    out = inverter.search.refine_digits(target, start, budget=900)
    text = inverter.text_of(out.ids)
    assert "de50 5260 1815 9083 0166 13" in text
    assert out.cosine > 0.999
    assert ("iban", "de50 5260 1815 9083 0166 13") in {(p.type, p.value) for p in find_pii(text)}


def test_texts_without_digits_skip_the_digit_phase(inverter):
    target = inverter.encoder.embed_texts(["reset my password"])[0]
    out = inverter.search.run(target)
    assert out.evaluations <= 400 + inverter.search.cfg.prune_budget + 64
    assert not any(any(c.isdigit() for c in w) for w in out.words)


def _parked_ssn(inverter, words: str, last: str):
    """The search as the digit polish finds it: the dev SSN text's vector as the target, ``words``
    then ``078-05-<last>`` scored once and parked as the number."""
    search = inverter.search
    target = search._reset(inverter.encoder.embed_texts(["her social security number is 078-05-1120"])[0])
    search.limit = 1
    start = search._seq(words) + (search._unit(f"078-05-{last}"),)
    assert search._evaluate([start], target)
    search.parked = (start[-1], ["078", "05", last], (3, 2, 4), "-")
    return search, target, start


def test_digit_polish_jumps_the_leading_wordpiece(inverter):
    """``8620`` -> ``1120`` changes the group's first wordpiece (``86`` -> ``112``); the polish tries
    every two-digit prefix once per group, against the final words."""
    search, target, start = _parked_ssn(inverter, "her social security number is", "8620")
    blocks, search.cfg.digit_blocks = search.cfg.digit_blocks, 0  # the descent alone
    try:
        out = search._digit_polish(target, start)
    finally:
        search.cfg.digit_blocks = blocks
    assert search.words[out[-1]] == "078-05-1120"
    assert search.evals <= 1 + search.cfg.digit_polish


def test_group_search_recovers_a_group_one_digit_edits_miss(inverter):
    """``8602`` is what the full search left on the dev SSN text (``86 ##02`` vs ``112 ##0``): with
    the words right, scoring every value of the group at once finds ``1120`` in one visit."""
    search = inverter.search
    truth = "her social security number is 078-05-1120"
    target = search._reset(inverter.encoder.embed_texts([truth])[0])
    search.limit = 1200
    rest = search._seq("her social security number is")
    score, _, _, groups, _, _ = search._group_search(
        rest, len(rest), ["078", "05", "8602"], (3, 2, 4), "-", target, 1200
    )
    assert groups == ["078", "05", "1120"]
    assert score > 0.9999
    # The last group first: the digit exchanges (C(9, 2) at most), then one visit, both stages.
    assert search.evals <= 1 + 36 + 999 + 9


def test_group_search_waits_for_the_words_around_the_number(inverter):
    """Below ``group_min_cos`` the words around the number are wrong (dev: 0.974, 0.980 on entry),
    and scoring every value of a group against them only fits the digits to noise."""
    search, target, start = _parked_ssn(inverter, "weather beach holiday pizza", "8602")
    assert search.cache[start][0] < search.cfg.group_min_cos
    search._digit_polish(target, start)
    blocks = len(digits.block_exchanges(["078", "05", "8602"], search.cfg.digit_blocks))
    assert search.evals <= 1 + blocks + search.cfg.digit_polish  # the polish ran, the group search did not


def test_block_exchange_puts_a_moved_run_of_digits_back(inverter):
    """``555-530-9867`` is the dev phone with ``5309`` moved in front of ``867``: the same wordpieces
    in another order. One exchange of adjacent runs puts it back, in one batch."""
    search = inverter.search
    truth = "call me at 555-867-5309 tomorrow morning"
    target = search._reset(inverter.encoder.embed_texts([truth])[0])
    rest = search._seq("call me at tomorrow morning")
    groups = search._block_exchange(target, rest, 3, ["555", "530", "9867"], "-")
    assert groups == ["555", "867", "5309"]
    assert search.evals == 1 + len(digits.block_exchanges(["555", "530", "9867"], search.cfg.digit_blocks))
    # Nothing better than the number as it stands: it is kept.
    assert search._block_exchange(target, rest, 3, ["555", "867", "5309"], "-") == ["555", "867", "5309"]


def test_bfloat16_screen_ranks_like_the_exact_forward(inverter):
    """``screen_ids`` is a bfloat16 copy of the model: cosines within a few thousandths of the exact
    forward's, the same best value among a group's (run here even where bfloat16 is emulated)."""
    enc = inverter.encoder
    texts = [f"her social security number is 078-05-{v}" for v in ("1120", "1121", "8602", "0000")]
    seqs = [enc.tokenize(t) for t in texts]
    target = enc.embed_texts(["her social security number is 078-05-1120"])[0]
    exact = enc.forward_ids(seqs)[0].float().numpy() @ target
    approx = enc.screen_ids(seqs).float().numpy() @ target
    assert np.abs(exact - approx).max() < 0.01
    assert approx.argmax() == exact.argmax() == 0
    assert enc.forward_ids(seqs)[0].dtype == enc.torch.float32  # the exact path is untouched


def test_screen_keeps_the_best_few_and_charges_a_share_of_an_evaluation(inverter):
    search = inverter.search
    target = search._reset(inverter.encoder.embed_texts(["her social security number is 078-05-1120"])[0])
    search.limit = 10**6
    rest = search._seq("her social security number is")
    cands = [
        search._placed(rest, len(rest), ["078", "05", v], "-") for v in digits.group_values("8600", False)
    ]
    search._evaluate(cands[:1], target)  # one already scored: kept, not charged
    fast = inverter.encoder.__dict__.get("fast_bf16")
    inverter.encoder.__dict__["fast_bf16"] = True  # the screen's logic, whatever this CPU is
    try:
        before = search.evals
        kept = search._screen(cands, target, 32)
        charged = search.evals - before
        inverter.encoder.__dict__["fast_bf16"] = False
        assert search._screen(cands, target, 32) == cands  # not native: every value exactly
    finally:
        if fast is None:
            inverter.encoder.__dict__.pop("fast_bf16")
        else:
            inverter.encoder.__dict__["fast_bf16"] = fast
    assert len(kept) == 33 and kept[0] == cands[0]
    assert charged == math.ceil((len(cands) - 1) * search.cfg.screen_cost)
    truth = search._placed(rest, len(rest), ["078", "05", "1120"], "-")
    assert truth in kept  # the true value survives the screen


def test_reshape_searches_a_number_left_in_its_found_groups_as_a_pii_shape(inverter):
    """A number still in the groups the word search found (free lengths) keeps those lengths in the
    per-group search, so a card read as ``… 1111 111`` can never become ``… 1111 1117``. Re-seeded as
    a card, one group's search puts it right; a shape whose seed scores far below is not searched."""
    search = inverter.search
    truth = "the discover card 6011 1111 1111 1117 was stolen yesterday"
    target = search._reset(inverter.encoder.embed_texts([truth])[0])
    rest = search._seq("the discover card was stolen yesterday")
    found = ["6011", "1111", "1111", "111"]
    free = (None, None, None, None)
    search.limit = 1200
    score, *_, groups, lengths, sep = search._group_search(rest, 3, list(found), free, " ", target, 1200)
    assert sorted(len(g) for g in groups) == [3, 4, 4, 4]  # groups swap, their lengths stay

    budget, search.cfg.reshape_budget = search.cfg.reshape_budget, 1200
    try:
        evals = search.evals
        got, _, _, groups, lengths, sep = search._reshape(target, rest, 3, groups, score)
    finally:
        search.cfg.reshape_budget = budget
    assert digits.render(groups, sep) == "6011 1111 1111 1117" and lengths == (4, 4, 4, 4)
    assert got > 0.9999 > score
    assert search.evals - evals <= len(digits.SHAPES) + 1200

    # A number that is not a PII shape (an order number): every shape's seed scores far below the
    # found groups, and none is searched.
    target = search._reset(inverter.encoder.embed_texts(["my order number is 60 1111 10 637"])[0])
    rest = search._seq("my order number is")
    search.limit = 1
    start = search._placed(rest, 4, ["60", "1111", "10", "636"], " ")
    assert search._evaluate([start], target)
    kept = search._reshape(target, rest, 4, ["60", "1111", "10", "636"], search.cache[start][0])
    assert kept[3] == ["60", "1111", "10", "636"] and kept[4] == free
    assert search.evals == 1 + len(digits.SHAPES)
