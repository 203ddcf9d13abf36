"""An installed vecleak carries its rule pack: the wheel holds rules/ and the scanner finds it."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

from conftest import REPO

from scanner.rules import default_rules_dir, load_rules


def test_wheel_ships_every_shipped_rule_file(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(REPO),
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("vecleak-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(n.rsplit("/", 1)[1] for n in names if "/data/share/vecleak/rules/" in n)
    assert shipped == sorted(p for p in os.listdir(REPO / "rules") if p.endswith(".yml"))
    assert any(n.endswith("scanner/data/models.yaml") for n in names)


def test_vecleak_rules_env_overrides_the_pack(tmp_path, monkeypatch):
    (tmp_path / "only.yml").write_text("id: only.one\ntitle: t\nlevel: low\n")
    monkeypatch.setenv("VECLEAK_RULES", str(tmp_path))
    assert default_rules_dir() == str(tmp_path)
    assert [r.id for r in load_rules().rules] == ["only.one"]
