"""The rule engine: the shipped pack loads, matching works, and bad files fail with file:line."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_cli

from scanner.model import Candidate, Finding, Level, ModelGuess, SourceRef
from scanner.rules import RuleError, load_rules


def _finding(
    encoding="python-list", dim=384, truncated=False, model=None, path="/var/log/app.log", kind="file"
):
    values = np.full(dim if not truncated else 6, 0.05, dtype=np.float32)
    cand = Candidate(
        values=values,
        encoding=encoding,
        start=0,
        end=10,
        truncated=truncated,
        declared_dim=dim if truncated else None,
    )
    guesses = [ModelGuess(model, 0.9, ("test",))] if model else []
    return Finding(cand, SourceRef(kind, path, f"file:{path}"), 1, 0, 0.9, (), guesses)


def test_shipped_pack_is_valid_and_disjoint_for_a_plain_list():
    rules = load_rules()
    assert len(rules) >= 5
    fired = [a.rule_id for a in rules.evaluate(_finding(model="openai/text-embedding-3-small"))]
    assert fired == ["vecleak.log.embedding"]
    assert [a.level for a in rules.evaluate(_finding(model="x/y"))] == [Level.high]


def test_pack_routes_encodings_and_truncation():
    rules = load_rules()
    assert "vecleak.log.base64-embedding" in [
        a.rule_id for a in rules.evaluate(_finding(encoding="base64-f32le"))
    ]
    assert "vecleak.log.embedding" not in [
        a.rule_id for a in rules.evaluate(_finding(encoding="base64-f32le"))
    ]
    fired = {
        a.rule_id: a.level
        for a in rules.evaluate(_finding(encoding="numpy-summary", truncated=True, dim=1536))
    }
    assert fired == {"vecleak.log.truncated-print": Level.low}
    assert "vecleak.model.unknown" in [a.rule_id for a in rules.evaluate(_finding())]


def test_allowlists(tmp_path):
    f = _finding(path="/var/log/test/app.log")
    rule = tmp_path / "r.yml"
    rule.write_text(
        "id: t.one\ntitle: t\nlevel: high\nmatch:\n  dims: {min: 64}\n"
        f"allow:\n  paths: ['/var/log/test/*']\n  vector_sha256: ['{f.sha256}']\n"
    )
    assert load_rules([str(rule)]).evaluate(f) == []
    assert len(load_rules([str(rule)]).evaluate(_finding(path="/var/log/prod/app.log", dim=128))) == 1


def test_errors_report_file_line_and_reason(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "id: ok.id\n"
        "title: t\n"
        "level: severe\n"  # line 3
        "match:\n"
        "  dims: {min: 500, max: 100}\n"  # line 5
        "  encodingz: [x]\n"  # line 6
        "  text_regex: '('\n"  # line 7
    )
    with pytest.raises(RuleError) as exc:
        load_rules([str(bad)])
    problems = exc.value.problems
    assert any(p.startswith(f"{bad}:3:") and "unknown level" in p for p in problems)
    assert any(p.startswith(f"{bad}:5:") and "above max" in p for p in problems)
    assert any(p.startswith(f"{bad}:6:") and "encodingz" in p for p in problems)
    assert any(p.startswith(f"{bad}:7:") and "regular expression" in p for p in problems)


def test_yaml_syntax_error_and_duplicate_ids(tmp_path):
    (tmp_path / "a.yml").write_text("id: dup\ntitle: a\nlevel: low\n")
    (tmp_path / "b.yml").write_text("title: b\nlevel: low\n\nid: dup\n")
    (tmp_path / "c.yml").write_text("id: fine\ntitle: c\nlevel: low\n---\nid: [unclosed\n")
    res = run_cli("rules", "validate", str(tmp_path))
    err = res.stderr.decode()
    assert res.returncode == 1
    assert f"{tmp_path}/b.yml:1: duplicate rule id 'dup'" in err
    assert f"{tmp_path}/c.yml:6: YAML syntax error" in err


def test_scan_refuses_invalid_rules(tmp_path):
    (tmp_path / "r.yml").write_text("id: x\ntitle: x\n")
    res = run_cli("scan", str(tmp_path), "--rules", str(tmp_path / "r.yml"))
    assert res.returncode == 1
    assert f"{tmp_path}/r.yml:1: rule is missing required field 'level'" in res.stderr.decode()
