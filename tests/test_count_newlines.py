"""count_newlines must agree with bytes.count everywhere, including chunk edges and short spans."""

import random

import pytest

from scanner.model import Record, SourceRef, count_newlines, newlines_before


@pytest.mark.parametrize("size", [0, 1, 8191, 8192, 65536, 1 << 20, (1 << 20) + 7, 3 * (1 << 20) + 1])
def test_count_newlines_matches_bytes_count(size: int) -> None:
    rng = random.Random(size)
    data = bytes(rng.choice(b"ab\n") for _ in range(size))
    assert count_newlines(data) == data.count(b"\n")
    for start, end in [(0, size), (size // 3, size), (1, size - 1), (size, size), (5, size + 100)]:
        assert count_newlines(data, start, end) == data.count(b"\n", start, end), (start, end)


def test_line_at_counts_each_span_once_and_in_any_order() -> None:
    data = b"x\n" * 300_000
    rec = Record(data=data, source=SourceRef("file", "f", "f"), line=10)
    assert rec.line_at(200_001) == 10 + 100_000
    assert rec.line_at(len(data)) == 10 + 300_000
    assert rec.line_at(3) == 11  # going back restarts from the record's first line


@pytest.mark.parametrize("size", [0, 100, 8192, 70_000, 3 * (1 << 20) + 5])
@pytest.mark.parametrize("count", [0, 1, 3, 4, 60])
def test_newlines_before_matches_bytes_count(size: int, count: int) -> None:
    """Positions in any order, repeated, at a newline and at both ends."""
    rng = random.Random(size * 100 + count)
    data = bytes(rng.choice(b"ab\n") for _ in range(size))
    positions = [rng.randint(0, size) for _ in range(count)]
    if count > 2:
        positions[1] = positions[0]  # the same place twice
        positions[2] = size
    if count and size and data.find(b"\n") >= 0:
        positions[0] = data.find(b"\n")  # a newline at the position itself is not before it
    assert newlines_before(data, positions) == [data.count(b"\n", 0, p) for p in positions]
