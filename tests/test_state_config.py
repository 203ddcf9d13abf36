"""The state store and the daemon's config layering (file < env < flags)."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest

from scanner.daemon import load_config
from scanner.state import StateError, StateStore


def test_state_is_private_wal_and_transactional(tmp_path):
    path = tmp_path / "sub" / "state.db"
    store = StateStore(str(path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    store.put("es.marks", "index-a", {"ts": 5})
    with pytest.raises(RuntimeError), store.transaction():
        store.put("es.marks", "index-a", {"ts": 9})
        store.add_ids("alerts", ["x"])
        raise RuntimeError("boom")
    assert store.get("es.marks", "index-a") == {"ts": 5}
    assert not store.has_id("alerts", "x")
    with store.transaction():
        store.add_ids("alerts", ["x", "y", "x"])
    assert store.count_ids("alerts") == 2 and store.items("es.marks") == {"index-a": {"ts": 5}}
    store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(StateError):
        StateStore(str(path))


def test_config_layers(tmp_path):
    f = tmp_path / "vecleak.yml"
    f.write_text("paths: [/a/*.log]\nstate: /file.db\npoll_interval: 2\nrotate_wait: 7\n")
    env = {"VECLEAK_STATE": "/env.db", "VECLEAK_POLL_INTERVAL": "0.5", "VECLEAK_OUTPUT": "jsonl:a,jsonl:b"}
    cfg = load_config(str(f), {"state": "/flag.db", "rotate_wait": None}, env=env)
    assert cfg.paths == ["/a/*.log"]
    assert cfg.state == "/flag.db"  # flag beats env beats file
    assert cfg.poll_interval == 0.5
    assert cfg.rotate_wait == 7
    assert cfg.output == ["jsonl:a", "jsonl:b"]
    f.write_text("pathz: [/a]\n")
    with pytest.raises(ValueError, match="unknown setting"):
        load_config(str(f), {}, env={})


def test_one_exclusive_owner_at_a_time(tmp_path):
    path = str(tmp_path / "state.db")
    owner = StateStore(path)
    with pytest.raises(StateError, match="in use by another vecleak process"):
        StateStore(path)
    shared = StateStore(path, exclusive=False)  # Elasticsearch slices share the file by design
    owner.put("ns", "k", 1)
    assert shared.get("ns", "k") == 1
    shared.close()
    owner.close()
    again = StateStore(path)  # the lock goes with the owner
    assert again.get("ns", "k") == 1
    again.close()


def test_a_store_that_fails_to_open_releases_the_file(tmp_path):
    path = tmp_path / "state.db"
    StateStore(str(path)).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    for _ in range(2):  # the second attempt must meet the schema error again, not a held lock
        with pytest.raises(StateError, match="newer than this vecleak"):
            StateStore(str(path))
