"""Alert timestamps: ECS ``@timestamp`` strings, UTC to the millisecond, from a per-millisecond cache."""

import datetime as dt
import re

from scanner.ecs import now_iso


def test_now_iso_is_utc_milliseconds_and_current() -> None:
    before = dt.datetime.now(dt.UTC)
    stamps = [now_iso() for _ in range(2000)]  # many in one millisecond come from the cache
    after = dt.datetime.now(dt.UTC)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", s) for s in stamps)
    parsed = [dt.datetime.fromisoformat(s.replace("Z", "+00:00")) for s in stamps]
    assert parsed == sorted(parsed)
    assert before - dt.timedelta(milliseconds=1) < parsed[0] and parsed[-1] <= after
