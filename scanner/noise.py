"""Noise control after dedup: one alert per source × model × rule per window, and a rate limit.

Dedup and the baseline (in :mod:`scanner.engine`) decide *whether* an alert is new. This module
decides *how loudly* new alerts reach the SOC, without losing any of them from the counts:

* **Grouping** (``group_window``): the first alert of a group (source identity × top model × rule)
  goes out at once, so the analyst is paged on the first leak, not a window later. Later alerts of
  the group within the window are folded. When the window closes (the next alert after it, an
  explicit :meth:`NoiseControl.expire`, or :meth:`NoiseControl.flush` at exit) one roll-up alert is
  sent with ``count`` = the folded alerts, the number of distinct vectors, a few sample hashes and
  the window bounds. A window with nothing folded sends no roll-up.
* **Rate limit** (``max_per_minute``): one token bucket for the whole engine (capacity N, refilled
  at N per minute). An alert that finds the bucket empty is not sent alone but folded into its
  group's roll-up (counted as ``rate_limited``); without grouping, those roll-ups use a 60 s window.
  Roll-ups themselves never wait for a token: there is at most one per group per window, and they
  are what makes limiting lossless.

The limit is global rather than per sink so that every sink, the summary and the exit code see the
same stream; a per-receiver cap would make the SIEM and the alert file disagree about what was sent.

Runs once per admitted alert, never per line, and takes its time from an injectable ``clock`` so
tests are deterministic.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from scanner.model import Alert, AlertGroup

SENT = "sent"
GROUPED = "grouped"
RATE_LIMITED = "rate_limited"
RATE_WINDOW = 60.0  # roll-up window for rate-limited alerts when grouping is off
SAMPLES = 5

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``"90"``, ``"90s"``, ``"5m"``, ``"1h"``, ``"250ms"`` → seconds (> 0). ValueError otherwise."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*", text)
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"invalid duration {text!r} (expected e.g. 60s, 5m, 1h)")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def group_key(alert: Alert) -> tuple[str, str, str]:
    f = alert.finding
    top = f.model
    return (f.source.identity, top.model if top else "unknown", alert.rule_id)


class TokenBucket:
    """``per_minute`` tokens, refilled continuously; starts full so a short burst passes."""

    def __init__(self, per_minute: int, clock: Callable[[], float]) -> None:
        if per_minute < 1:
            raise ValueError("--max-alerts-per-minute must be at least 1")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.tokens = self.capacity
        self.clock = clock
        self.last = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class _Window:
    start: float
    first_event_id: str | None
    folded: int = 0
    rate_limited: int = 0
    representative: Alert | None = None
    vectors: set[str] = field(default_factory=set)
    samples: list[str] = field(default_factory=list)

    def fold(self, alert: Alert, limited: bool) -> None:
        self.folded += 1
        self.rate_limited += limited
        if self.representative is None:
            self.representative = alert
        sha = alert.finding.sha256
        if sha not in self.vectors:
            self.vectors.add(sha)
            if len(self.samples) < SAMPLES:
                self.samples.append(sha)


class NoiseControl:
    """Per-alert gate: :meth:`admit` says what to send now; :meth:`flush` sends what is left."""

    def __init__(
        self,
        group_window: float | None = None,
        max_per_minute: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.grouping = group_window is not None
        self.window = group_window if group_window is not None else RATE_WINDOW
        self.clock = clock
        self.bucket = TokenBucket(max_per_minute, clock) if max_per_minute else None
        # Every window has the same length, so insertion order is expiry order.
        self._open: OrderedDict[tuple[str, str, str], _Window] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.grouping or self.bucket is not None

    def admit(self, alert: Alert) -> tuple[list[Alert], str]:
        """Alerts to send now (closed windows' roll-ups first, then maybe this one) and the verdict."""
        now = self.clock()
        out = self.expire(now)
        key = group_key(alert)
        win = self._open.get(key)
        if self.grouping and win is not None:
            win.fold(alert, limited=False)
            return out, GROUPED
        if self.bucket is None or self.bucket.take():
            if self.grouping:
                self._open[key] = _Window(start=now, first_event_id=alert.event_id)
            out.append(alert)
            return out, SENT
        if win is None:
            win = self._open[key] = _Window(start=now, first_event_id=None)
        win.fold(alert, limited=True)
        return out, RATE_LIMITED

    def expire(self, now: float | None = None) -> list[Alert]:
        """Close the windows that have run out; returns their roll-ups (call it when idle, too)."""
        now = self.clock() if now is None else now
        out = []
        while self._open:
            key, win = next(iter(self._open.items()))
            if now < win.start + self.window:
                break
            del self._open[key]
            rollup = self._rollup(key, win, win.start + self.window)
            if rollup is not None:
                out.append(rollup)
        return out

    def flush(self) -> list[Alert]:
        """Close every window now (end of run): nothing folded is left unreported."""
        now = self.clock()
        out = [
            r
            for key, win in self._open.items()
            if (r := self._rollup(key, win, min(now, win.start + self.window))) is not None
        ]
        self._open.clear()
        return out

    def _rollup(self, key: tuple[str, str, str], win: _Window, end: float) -> Alert | None:
        rep = win.representative
        if rep is None:
            return None
        group = AlertGroup(
            source=key[0],
            model=key[1],
            rule_id=key[2],
            start=win.start,
            end=end,
            alerts=win.folded,
            distinct_vectors=len(win.vectors),
            rate_limited=win.rate_limited,
            first_event_id=win.first_event_id,
            sample_sha256=tuple(win.samples),
        )
        return Alert(
            finding=rep.finding,
            rule_id=rep.rule_id,
            rule_title=rep.rule_title,
            level=rep.level,
            tags=rep.tags,
            outputs=rep.outputs,
            count=win.folded,
            group=group,
        )
