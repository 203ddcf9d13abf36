"""The knob sweep's plumbing (bench/sweep.py, bench/inversion.py --knob): what a GPU session's
one call relies on, checked here where a mistake costs nothing."""

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import sweep  # noqa: E402


def test_variants_file_puts_base_first_and_rejects_a_malformed_line(tmp_path):
    good = tmp_path / "v.txt"
    good.write_text("# comment\nins9 insert_budget=900  # trailing\n\nx2 budget=5000 kick_budget=1200\n")
    assert sweep.read_variants(good) == {
        "base": [],
        "ins9": ["insert_budget=900"],
        "x2": ["budget=5000", "kick_budget=1200"],
    }
    for bad in ("ins9 insert_budget\n", "a x=1\na y=2\n"):  # no '=', a name twice
        (tmp_path / "bad.txt").write_text(bad)
        with pytest.raises(SystemExit, match="bad.txt:"):
            sweep.read_variants(tmp_path / "bad.txt")


def _report(f1: float, evals: int) -> dict:
    return {"result": {"token_f1": f1, "rows": [{"evals": evals}]}}


def test_combinations_join_affordable_winners_best_first():
    variants = {
        "base": [],
        "a": ["x=1", "y=2"],
        "b": ["z=1"],
        "c": ["x=3", "w=1"],
        "d": ["q=1"],
        "e": ["v=1"],
    }
    reports = {
        "base": _report(0.80, 100),
        "a": _report(0.85, 105),
        "b": _report(0.90, 300),  # the best, but three times the cost: a trade, not a free gain
        "c": _report(0.82, 100),
        "d": _report(0.70, 100),  # a loser
        "e": _report(0.81, 110),
    }
    assert sweep.combinations(variants, reports, 4) == {
        "a+c": ["x=1", "y=2", "w=1"],  # ``a``'s x wins over ``c``'s
        "a+c+e": ["x=1", "y=2", "w=1", "v=1"],
    }
    assert sweep.combinations(variants, reports, 1) == {}


def test_knob_overrides_take_each_knob_s_type_and_refuse_unknown_names():
    pytest.importorskip("sacrebleu")
    import inversion as bench

    from scanner.inversion.words import WordSearchConfig

    class Stub:  # bench.set_knobs reads only ``search.cfg``
        class search:
            cfg = WordSearchConfig()

    inv = Stub()
    bench.set_knobs(inv, ["insert_budget=900", "prune_eps=0.001", "max_seconds=2.5"])
    cfg = inv.search.cfg
    assert (cfg.insert_budget, cfg.prune_eps, cfg.max_seconds) == (900, 0.001, 2.5)
    assert isinstance(cfg.insert_budget, int)
    with pytest.raises(SystemExit, match="unknown WordSearchConfig knob 'insert_budgt'"):
        bench.set_knobs(inv, ["insert_budgt=900"])
    with pytest.raises(SystemExit, match="'insert_budget=lots': expected a int"):
        bench.set_knobs(inv, ["insert_budget=lots"])


def test_baseline_knobs_without_the_word_search_baseline_fail_before_any_run(monkeypatch, capsys):
    """The baseline is the wordpiece search unless told otherwise; its config has no word-search
    knobs, so ``--baseline-set`` alone must say what to add, not fail after the result run."""
    pytest.importorskip("sacrebleu")
    import inversion as bench

    monkeypatch.setattr(sys, "argv", ["inversion.py", "--set", "test", "--baseline-set", "pivot_budget=0"])
    with pytest.raises(SystemExit) as exit_info:
        bench.main()
    assert exit_info.value.code == 2
    assert "add --baseline-method words" in capsys.readouterr().err


def test_a_run_starts_only_if_the_fastest_finished_run_says_it_can_end_by_the_deadline():
    now = time.monotonic()
    assert sweep.can_finish({}, now + 5)  # nothing finished yet: no estimate, start
    finished = {"base": {"wall_seconds": 200.0}, "ins9": {"wall_seconds": 120.0}}
    assert sweep.can_finish(finished, now + 300)
    assert not sweep.can_finish(finished, now + 100)  # even the fastest took 120 s
