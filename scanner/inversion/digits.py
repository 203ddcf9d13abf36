"""Digit strings as structured units: the shapes leaked PII takes, and one-digit moves between them.

Why a phase of its own (issue #3): a phone, card, SSN or IP address is several digit groups whose
wordpieces change wholesale when one digit does (``5309`` is ``530 ##9``), so the word search, which
moves one whole word at a time against a still-wrong context, leaves them as the wrong groups even
at cosine 0.95. Once the surrounding words are settled, the cosine is smooth in single digits
(``…-5308`` scores about 0.998 against ``…-5309``), so a coordinate descent over the digits of a
shape proposed as *one* unit walks it to the value in a few hundred exact evaluations.

An IBAN is the one shape with letters: its country code rides as the head of the first group
(``de50``), which every edit here leaves alone, and :func:`render` always prints the check digits
its account calls for.

Pure string logic here (no torch): :class:`~scanner.inversion.words.WordSearch` does the scoring.
"""

from __future__ import annotations

from collections.abc import Sequence

from scanner.pii import IBAN_LENGTHS, luhn_ok

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
# Countries whose IBAN is digits after the country code, so the digit phase can search it; the
# others (GB, IE, NL, IT, RO, AD) carry a bank code in letters.
IBAN_NUMERIC = frozenset(IBAN_LENGTHS) - {"GB", "IE", "NL", "IT", "RO", "AD"}


def iban_lengths(country: str) -> tuple[int, ...]:
    """Digit-group lengths of ``country``'s IBAN as printed (``de50 5260 1815 9083 0166 13``): the
    first group's two check digits, which carry the country code as a letter head, then fours."""
    rest = IBAN_LENGTHS[country.upper()] - 4
    return (2, *([4] * (rest // 4)), *([rest % 4] if rest % 4 else []))


def iban_seed(country: str, flat: str) -> list[str]:
    """``country``'s IBAN groups from the digits found, read as the account, with the check digits
    computed from it: those are two wordpieces glued to the country code (``de`` ``##50``), which
    the word search, proposing whole words, never finds, so the digits it did find are the rest."""
    lengths = iban_lengths(country)
    n = sum(lengths) - 2
    account = (flat + (flat[:1] or "0") * n)[:n]
    return _regroup(
        _check_digits(country, account) + account, [country + "00", *("0" * k for k in lengths[1:])]
    )


def _check_digits(country: str, account: str) -> str:
    """ISO 7064 mod-97 check digits of an all-digit ``account`` in ``country``."""
    moved = int(account + "".join(str(int(c, 36)) for c in country.upper()) + "00")
    return f"{98 - moved % 97:02d}"


def head(group: str) -> str:
    """A group's leading letters (an IBAN's country code, ``de`` of ``de50``); ``""`` for digits.

    Every edit below changes only the digits after the head: the country is found as a word."""
    k = 0
    while k < len(group) and group[k].isalpha():
        k += 1
    return group[:k]


def _split(group: str) -> tuple[str, str]:
    """``(head, digits)`` of a group: ``("de", "50")`` for ``de50``, ``("", "5309")`` for ``5309``."""
    h = head(group)
    return h, group[len(h) :]


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
    """The number as printed. An IBAN (a first group headed by a country code) always gets the
    check digits its account calls for: every IBAN in use passes ISO 7064 mod-97, and the check
    digits are two wordpieces (``##50`` of ``de50``) a search would otherwise have to find too."""
    country = head(groups[0]) if groups else ""
    if len(country) == 2 and country.upper() in IBAN_LENGTHS and digits_of(groups).isdigit():
        account = digits_of(groups)[2:]
        groups = _regroup(_check_digits(country, account) + account, groups)
    return sep.join(groups)


def variants(group: str, free: bool, max_len: int = 3) -> list[str]:
    """One-digit edits of a group: substitutions, and for free-length groups insertions/deletions."""
    h, body = _split(group)
    out = {body[:k] + c + body[k + 1 :] for k in range(len(body)) for c in "0123456789"}
    if free:
        if len(body) < max_len:
            out |= {body[:k] + c + body[k:] for k in range(len(body) + 1) for c in "0123456789"}
        if len(body) > 1:
            out |= {body[:k] + body[k + 1 :] for k in range(len(body))}
    out.discard(body)
    return sorted(h + v for v in out)


def prefixes(group: str, k: int, free: bool) -> list[str]:
    """Every value of a group's leading ``k`` digits, the rest kept (``5309`` -> ``0009`` … ``9909``).

    A short free-length group (a dotted quad's ``7``) takes every 1- to ``k``-digit value instead."""
    h, body = _split(group)
    if free and len(body) <= k:
        return [h + str(n) for n in range(10**k) if str(n) != body]
    k = min(k, len(body))
    return [h + f"{n:0{k}d}" + body[k:] for n in range(10**k) if f"{n:0{k}d}" + body[k:] != body]


def group_values(group: str, quad: bool) -> list[str]:
    """Every value the per-group search scores at once for ``group`` (the group itself left out).

    The exact cosine ranks a group's true value first when the rest of the text is right (dev:
    every group of three phones, an SSN, two cards and an IPv4, out of all 10**n values), but
    wordpieces make it a categorical choice (``555`` is one piece, its neighbour ``530`` is the
    runner-up, ``556`` is not near), so one-digit edits and prefixes stall. Up to three digits:
    all 10**n values; longer: every value of the leading three (``5309`` is ``530 ##9``), the rest
    kept, then :func:`tail_values`; a dotted quad's group: 0–255."""
    h, body = _split(group)
    if quad:
        out = [str(n) for n in range(256)]
    else:
        k = min(len(body), 3)
        out = [h + f"{n:0{k}d}" + body[k:] for n in range(10**k)]
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
    flat = digits_of(groups)
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
    flat = digits_of(groups)
    n = len(flat)
    out = {}
    for a in range(n):
        for b in range(a + 1, min(a + max_block, n) + 1):
            for c in range(b + 1, min(b + max_block, n) + 1):
                moved = flat[:a] + flat[b:c] + flat[a:b] + flat[c:]
                if moved != flat:
                    out[moved] = None
    return [_regroup(f, groups) for f in out]


def digits_of(groups: Sequence[str]) -> str:
    """The number's digits in order, without the groups' letter heads."""
    return "".join(_split(g)[1] for g in groups)


def _regroup(flat: str, groups: Sequence[str]) -> list[str]:
    """The digits ``flat`` cut into groups shaped like ``groups`` (their lengths and letter heads)."""
    cut, k = [], 0
    for g in groups:
        h = head(g)
        n = len(g) - len(h)
        cut.append(h + flat[k : k + n])
        k += n
    return cut


def tail_values(group: str) -> list[str]:
    """The second stage for groups over three digits: each digit after the third, one at a time."""
    h, body = _split(group)
    out = {h + body[:k] + c + body[k + 1 :] for k in range(3, len(body)) for c in "0123456789"}
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
    "IBAN_NUMERIC",
    "SEPARATORS",
    "SHAPES",
    "TWINS",
    "block_exchanges",
    "digits_of",
    "group_values",
    "head",
    "iban_lengths",
    "iban_seed",
    "luhn_repairs",
    "prefixes",
    "render",
    "seed",
    "tail_values",
    "transpositions",
    "twin_values",
    "variants",
]
