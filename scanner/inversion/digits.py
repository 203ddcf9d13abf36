"""Digit strings as structured units: the shapes leaked PII takes, and one-digit moves between them.

Why a phase of its own (issue #3): a phone, card, SSN or IP address is several digit groups whose
wordpieces change wholesale when one digit does (``5309`` is ``530 ##9``), so the word search, which
moves one whole word at a time against a still-wrong context, leaves them as the wrong groups even
at cosine 0.95. Once the surrounding words are settled, the cosine is smooth in single digits
(``…-5308`` scores about 0.998 against ``…-5309``), so a coordinate descent over the digits of a
shape proposed as *one* unit walks it to the value in a few hundred exact evaluations.

Pure string logic here (no torch): :class:`~scanner.inversion.words.WordSearch` does the scoring.
"""

from __future__ import annotations

from collections.abc import Sequence

from scanner.pii import luhn_ok

# A shape is digit-group lengths and the separators between them; ``None`` lengths are free (1–3).
SHAPES: dict[str, tuple[tuple[int | None, ...], str]] = {
    "phone": ((3, 3, 4), "-"),
    "ssn": ((3, 2, 4), "-"),
    "card": ((4, 4, 4, 4), " "),
    "ip": ((None, None, None, None), "."),
}
SEPARATORS = frozenset({"-", ".", "/", ":"})
# Shapes one group's length apart: a phone and an SSN differ only in the middle group (``555-86-5309``
# is the phone ``555-867-5309`` with the SSN's middle), so the per-group search tries both there.
TWINS: dict[tuple[tuple[int | None, ...], str], tuple[int | None, ...]] = {
    ((3, 3, 4), "-"): (3, 2, 4),
    ((3, 2, 4), "-"): (3, 3, 4),
}
FREE_MAX = 4


def seed(lengths: Sequence[int | None], digits: str, groups: Sequence[str] = ()) -> list[str]:
    """Fill a shape's groups from the digits the word search found.

    With as many found groups as the shape has, each group keeps its own digits, cut or topped up
    from the next group's leading digits (an SSN-shaped ``555-86-7196`` seeds the phone
    ``555-867-7196``, one group from right); otherwise the digits flow in order, padded with their
    own first digit. Free groups take 1–3 digits, as a dotted quad's do."""
    source = digits or "0"
    if groups and len(groups) == len(lengths):
        out = []
        for i, (g, n) in enumerate(zip(groups, lengths, strict=True)):
            if n is None:
                out.append(g[:3])
                continue
            tail = "".join(groups[i + 1 :]) + source
            out.append((g + tail)[:n])
        return out
    out, k = [], 0
    for n in lengths:
        width = n if n is not None else min(3, max(1, len(source) // max(1, len(lengths))))
        out.append("".join(source[k + i] if k + i < len(source) else source[0] for i in range(width)))
        k += width
    return out


def render(groups: Sequence[str], sep: str) -> str:
    return sep.join(groups)


def variants(group: str, free: bool, max_len: int = 3) -> list[str]:
    """One-digit edits of a group: substitutions, and for free-length groups insertions/deletions."""
    out = {group[:k] + c + group[k + 1 :] for k in range(len(group)) for c in "0123456789"}
    if free:
        if len(group) < max_len:
            out |= {group[:k] + c + group[k:] for k in range(len(group) + 1) for c in "0123456789"}
        if len(group) > 1:
            out |= {group[:k] + group[k + 1 :] for k in range(len(group))}
    out.discard(group)
    return sorted(out)


def prefixes(group: str, k: int, free: bool) -> list[str]:
    """Every value of a group's leading ``k`` digits, the rest kept (``5309`` -> ``0009`` … ``9909``).

    A short free-length group (a dotted quad's ``7``) takes every 1- to ``k``-digit value instead."""
    if free and len(group) <= k:
        return [str(n) for n in range(10**k) if str(n) != group]
    k = min(k, len(group))
    return [f"{n:0{k}d}" + group[k:] for n in range(10**k) if f"{n:0{k}d}" + group[k:] != group]


def group_values(group: str, quad: bool) -> list[str]:
    """Every value the per-group search scores at once for ``group`` (the group itself left out).

    The exact cosine ranks a group's true value first when the rest of the text is right (dev:
    every group of three phones, an SSN, two cards and an IPv4, out of all 10**n values), but
    wordpieces make it a categorical choice (``555`` is one piece, its neighbour ``530`` is the
    runner-up, ``556`` is not near), so one-digit edits and prefixes stall. Up to three digits:
    all 10**n values; longer: every value of the leading three (``5309`` is ``530 ##9``), the rest
    kept, then :func:`tail_values`; a dotted quad's group: 0–255."""
    if quad:
        out = [str(n) for n in range(256)]
    else:
        k = min(len(group), 3)
        out = [f"{n:0{k}d}" + group[k:] for n in range(10**k)]
    return [v for v in out if v != group]


def twin_values(lengths: Sequence[int | None], sep: str, j: int) -> tuple[tuple[int | None, ...], list[str]]:
    """The twin shape's lengths and every value of its group ``j`` when that is the one that differs
    (the middle group of a phone or an SSN); otherwise ``(lengths, [])``."""
    twin = TWINS.get((tuple(lengths), sep))
    if twin is None or twin[j] == lengths[j] or twin[j] is None:
        return tuple(lengths), []
    k = min(twin[j], 3)
    return twin, [f"{n:0{k}d}" for n in range(10**k)]


def transpositions(groups: Sequence[str]) -> list[list[str]]:
    """Every exchange of two different digits anywhere in the number, the group lengths kept.

    Mean pooling sees a bag of wordpieces, so ``555-869-5307`` (the ``##9`` and ``##7`` of
    ``555-867-5309`` exchanged) scores 0.9996 and no change of one group improves it."""
    flat = "".join(groups)
    out = []
    for a in range(len(flat)):
        for b in range(a + 1, len(flat)):
            if flat[a] == flat[b]:
                continue
            out.append(_regroup(flat[:a] + flat[b] + flat[a + 1 : b] + flat[a] + flat[b + 1 :], groups))
    return out


def block_exchanges(groups: Sequence[str], max_block: int = 4) -> list[list[str]]:
    """Every exchange of two adjacent runs of up to ``max_block`` digits, the group lengths kept.

    The same bag-of-wordpieces blindness one level up: ``415-019-5558`` holds the pieces of
    ``415-555-0198`` (``555``, ``01``…) in another order and scores near it, but no single-digit
    exchange and no one group's value leads there; moving ``555`` in front of ``019`` does."""
    flat = "".join(groups)
    n = len(flat)
    out = {}
    for a in range(n):
        for b in range(a + 1, min(a + max_block, n) + 1):
            for c in range(b + 1, min(b + max_block, n) + 1):
                moved = flat[:a] + flat[b:c] + flat[a:b] + flat[c:]
                if moved != flat:
                    out[moved] = None
    return [_regroup(f, groups) for f in out]


def _regroup(flat: str, groups: Sequence[str]) -> list[str]:
    """``flat`` cut into groups of the lengths of ``groups``."""
    cut, k = [], 0
    for g in groups:
        cut.append(flat[k : k + len(g)])
        k += len(g)
    return cut


def tail_values(group: str) -> list[str]:
    """The second stage for groups over three digits: each digit after the third, one at a time."""
    out = {group[:k] + c + group[k + 1 :] for k in range(3, len(group)) for c in "0123456789"}
    out.discard(group)
    return sorted(out)


def luhn_repairs(groups: Sequence[str]) -> list[list[str]]:
    """For a card-length number that fails the Luhn check, every one-digit change that passes it.

    Every issued card number passes Luhn (``scanner.pii`` recognises a card only then), so a number
    that fails is wrong somewhere, and one digit wrong (``4111 1111 1119 1111``: 0.9990 on dev) is
    put right by exactly one value at each position: at most 19 candidates. Empty for other numbers.
    """
    flat = "".join(groups)
    if not 13 <= len(flat) <= 19 or not flat.isdigit() or luhn_ok(flat):
        return []
    out = []
    for a in range(len(flat)):
        for c in "0123456789":
            f = flat[:a] + c + flat[a + 1 :]
            if c != flat[a] and luhn_ok(f):
                out.append(_regroup(f, groups))
                break
    return out


__all__ = [
    "SEPARATORS",
    "SHAPES",
    "TWINS",
    "block_exchanges",
    "group_values",
    "luhn_repairs",
    "prefixes",
    "render",
    "seed",
    "tail_values",
    "transpositions",
    "twin_values",
    "variants",
]
