"""A small persistent store for everything vecleak must remember across restarts.

One SQLite file (WAL, created 0600) holds one table per concern: ``kv`` for per-namespace JSON values
(file checkpoints, Elasticsearch high-water marks) and ``ids`` for sets of ids (alerts already
delivered). The API is deliberately tiny — get/put/delete/items on a namespace, add/has on an id set,
and a ``transaction()`` that groups writes — so each user keeps its own meaning in its own namespace.

Why SQLite and not a JSON file: a commit is atomic and durable without rewrite-and-rename, WAL lets a
reader (``/healthz``, a status command) look while the daemon writes, and a kill -9 mid-write leaves
the last committed state intact.

One process owns a state file at a time. Two owners (a cron scan that overran into the next one, a
second daemon pointed at the same file) would both report the same lines, and the last to commit
would silently undo the other's marks. So an exclusive store takes an ``flock`` on the database file
for its lifetime, and a second owner fails at once with a clear error instead of waiting: an
overlapping scheduled run should be skipped, not queued. Elasticsearch slices are the exception:
they share one file by design, each writing only its own keys.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kv (
    ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, updated REAL NOT NULL,
    PRIMARY KEY (ns, key)
);
CREATE TABLE IF NOT EXISTS ids (
    ns TEXT NOT NULL, id TEXT NOT NULL, added REAL NOT NULL,
    PRIMARY KEY (ns, id)
);
CREATE INDEX IF NOT EXISTS ids_added ON ids (ns, added);
"""


class StateError(RuntimeError):
    """The state file is not ours, from a newer vecleak, or in use by another vecleak process."""


class StateStore:
    """Thread-safe (one lock) handle on the state file; writes outside ``transaction()`` autocommit."""

    def __init__(self, path: str, exclusive: bool = True) -> None:
        self.path = path
        self._owner_fd = _take_ownership(path, exclusive)
        self._lock = threading.RLock()
        self._depth = 0
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        except BaseException:
            if self._owner_fd >= 0:
                os.close(self._owner_fd)
            raise
        try:
            self._open(path)
        except BaseException:
            self.close()  # a store that failed to open must not keep the file locked
            raise

    def _open(self, path: str) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode is durable against process crashes (kill -9); only an OS crash may lose
        # the last commits, which at-least-once delivery then replays.
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self.transaction():
            for stmt in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                self._db.execute(stmt)
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
            elif int(row[0]) > SCHEMA_VERSION:
                raise StateError(
                    f"{path}: state schema {row[0]} is newer than this vecleak ({SCHEMA_VERSION})"
                )
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.chmod(path + suffix, 0o600)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[StateStore]:
        """Group writes into one atomic commit; nests (inner blocks join the outer one)."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if outer:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._db.execute("COMMIT")

    # -- namespaced JSON values -------------------------------------------------------------------

    def get(self, ns: str, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE ns=? AND key=?", (ns, key)).fetchone()
        return orjson.loads(row[0]) if row else default

    def put(self, ns: str, key: str, value: Any) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO kv (ns, key, value, updated) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (ns, key) DO UPDATE SET value=excluded.value, updated=excluded.updated",
                (ns, key, orjson.dumps(value), time.time()),
            )

    def delete(self, ns: str, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM kv WHERE ns=? AND key=?", (ns, key))

    def items(self, ns: str) -> dict[str, Any]:
        with self._lock:
            rows = self._db.execute("SELECT key, value FROM kv WHERE ns=?", (ns,)).fetchall()
        return {k: orjson.loads(v) for k, v in rows}

    # -- id sets ----------------------------------------------------------------------------------

    def add_ids(self, ns: str, ids: Iterable[str]) -> None:
        now = time.time()
        with self._lock:
            self._db.executemany(
                "INSERT OR IGNORE INTO ids (ns, id, added) VALUES (?, ?, ?)", ((ns, i, now) for i in ids)
            )

    def has_id(self, ns: str, id_: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM ids WHERE ns=? AND id=?", (ns, id_)).fetchone() is not None

    def count_ids(self, ns: str) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM ids WHERE ns=?", (ns,)).fetchone()[0])

    def prune_ids(self, ns: str, older_than_s: float) -> int:
        """Forget ids added more than ``older_than_s`` ago, so the set cannot grow forever."""
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM ids WHERE ns=? AND added < ?", (ns, time.time() - older_than_s)
            )
            return cur.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()
            # Only after SQLite let go: closing any descriptor of the file drops every POSIX lock
            # this process holds on it, SQLite's included.
            if self._owner_fd >= 0:
                os.close(self._owner_fd)
                self._owner_fd = -1


def _take_ownership(path: str, exclusive: bool) -> int:
    """Create the file 0600 before SQLite does (SQLite would honour the umask, often 0644) and, when
    ``exclusive``, hold an ``flock`` on it: the descriptor returned keeps the lock until
    :meth:`StateStore.close` (-1 when not exclusive).

    ``flock`` and SQLite's own POSIX record locks do not interact on Linux, and forked scan workers
    share the descriptor, so they never contend with their parent.
    """
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    if not exclusive:
        os.close(fd)
        return -1
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StateError(
            f"{path}: in use by another vecleak process (a scan --state or watch still running with "
            "it); runs that share a state file must not overlap"
        ) from None
    except OSError:
        os.close(fd)
        raise
    return fd
