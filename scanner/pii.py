"""PII recogniser for reconstructed (inverted) text, and the masking used in every alert.

Why a module of its own: the rules engine matches on PII *types* (``email``, ``phone``,
``credit_card``, ``ssn``, ``iban``, ``ip``, ``person``) found in inverted text, and alerts must carry
redacted previews by default. stdlib + regex only, so the hot path can call it without torch.

Inverted text from uncased models is lower-case and loosely spaced (``mike . green @ gmail . com``),
so patterns tolerate spaces around ``@`` and ``.`` in emails and never rely on capitalisation.
Checksums (Luhn for cards, ISO 7064 mod-97 for IBANs, SSA rules for SSNs) keep random digit runs out.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import regex as re

from scanner.wordlists import FIRST_NAMES, NOT_NAMES, SURNAMES

PII_TYPES = ("email", "phone", "credit_card", "ssn", "iban", "ip", "person")


@dataclass(frozen=True, slots=True)
class PiiItem:
    """One PII value found in a text, with its span so it can be masked in place."""

    type: str
    value: str
    start: int
    end: int

    @property
    def masked(self) -> str:
        return mask_value(self.type, self.value)

    def to_dict(self, reveal: bool = False) -> dict[str, str]:
        return {"type": self.type, "value": self.value if reveal else self.masked}


# -- patterns ---------------------------------------------------------------------------------
_EMAIL = re.compile(
    r"(?<![\w.+-])[a-z0-9][\w+-]*(?:\s?\.\s?[\w+-]+)*\s?@\s?[a-z0-9][\w-]*(?:\s?\.\s?[a-z0-9][\w-]*)*\s?\.\s?[a-z]{2,24}(?![\w-])",
    re.IGNORECASE,
)
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_SSN = re.compile(r"(?<![\d-])(\d{3})[- ]?(\d{2})[- ]?(\d{4})(?![\d-])")
_IBAN = re.compile(r"(?<![a-z0-9])([a-z]{2}\s?\d{2}(?:\s?[a-z0-9]){11,30})(?![a-z0-9])", re.IGNORECASE)
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\s?\d{1,3}[\s.-]?)?(?:\(\s?\d{2,4}\s?\)|\d{2,4})(?:[\s.-]?\d{2,4}){1,3}(?![\w])"
)
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\s?\.\s?){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(
    r"(?<![\w:])(?:[0-9a-f]{1,4}:){2,7}[0-9a-f]{0,4}(?:::?[0-9a-f]{1,4})*(?![\w:])", re.IGNORECASE
)

IBAN_LENGTHS = {
    "AD": 24, "AT": 20, "BE": 16, "CH": 21, "CZ": 24, "DE": 22, "DK": 18, "ES": 24, "FI": 18, "FR": 27,
    "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IT": 27, "LU": 20, "NL": 18, "NO": 15, "PL": 28,
    "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24,
}  # fmt: skip

_CUE = re.compile(
    r"\b(?:my name is|name is|name:|this is|i am|i'm|i ' m|im|mr\.?|mrs\.?|ms\.?|dr\.?|dear|signed|regards,?|patient|customer|user)\s+([a-z][a-z'-]+)(?:\s+([a-z][a-z'-]+))?",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-z][a-z'-]+", re.IGNORECASE)


# -- checksums --------------------------------------------------------------------------------
def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    iban = re.sub(r"\s", "", iban).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", iban):
        return False
    expected = IBAN_LENGTHS.get(iban[:2])
    if expected is not None and len(iban) != expected:
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def ssn_ok(area: str, group: str, serial: str) -> bool:
    return not (area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000")


def _overlaps(start: int, end: int, taken: list[tuple[int, int]]) -> bool:
    return any(start < e and s < end for s, e in taken)


# -- finder -----------------------------------------------------------------------------------
def find_pii(text: str, types: tuple[str, ...] = PII_TYPES) -> list[PiiItem]:
    """All PII items in ``text``, earliest first; spans never overlap (more specific types win)."""
    items: list[PiiItem] = []
    taken: list[tuple[int, int]] = []

    def add(kind: str, start: int, end: int, value: str | None = None) -> None:
        if kind in types and not _overlaps(start, end, taken):
            items.append(PiiItem(kind, value if value is not None else text[start:end], start, end))
            taken.append((start, end))

    for m in _EMAIL.finditer(text):
        add("email", m.start(), m.end(), re.sub(r"\s", "", m.group()))
    for m in _IBAN.finditer(text):
        # The pattern is greedy across spaces ("... 0130 00 today"); drop trailing chunks until valid.
        value = m.group(1)
        while value:
            if iban_ok(value):
                add("iban", m.start(1), m.start(1) + len(value))
                break
            if " " not in value:
                break
            value = value.rsplit(" ", 1)[0]
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            add("credit_card", m.start(), m.end())
    for m in _SSN.finditer(text):
        if ssn_ok(*m.groups()) and ("-" in m.group() or " " in m.group() or len(m.group()) == 9):
            add("ssn", m.start(), m.end())
    for m in _IPV4.finditer(text):
        raw = re.sub(r"\s", "", m.group())
        try:
            ipaddress.IPv4Address(raw)
        except ValueError:
            continue
        add("ip", m.start(), m.end(), raw)
    for m in _IPV6.finditer(text):
        try:
            ipaddress.IPv6Address(m.group())
        except ValueError:
            continue
        add("ip", m.start(), m.end())
    for m in _PHONE.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 10 <= len(digits) <= 15 or (len(digits) == 7 and re.search(r"\d{3}[-.]\d{4}$", m.group())):
            add("phone", m.start(), m.end())
    _find_names(text, add)
    return sorted(items, key=lambda it: it.start)


def _find_names(text: str, add: object) -> None:
    for m in _CUE.finditer(text):
        first, last = m.group(1), m.group(2)
        if first.lower() in NOT_NAMES:
            continue
        cued_known = first.lower() in FIRST_NAMES or first.lower() in SURNAMES
        if not cued_known and not m.group(0).lower().startswith(("my name", "name", "mr", "mrs", "ms", "dr")):
            continue
        end = m.end(1)
        if last and last.lower() not in NOT_NAMES and (last.lower() in SURNAMES or cued_known):
            end = m.end(2)
        add("person", m.start(1), end)  # type: ignore[operator]
    words = list(_WORD.finditer(text))
    for i, w in enumerate(words):
        if w.group().lower() in FIRST_NAMES and i + 1 < len(words):
            nxt = words[i + 1]
            gap = text[w.end() : nxt.start()]
            if gap.strip() == "" and nxt.group().lower() in SURNAMES:
                add("person", w.start(), nxt.end())  # type: ignore[operator]


# -- masking ----------------------------------------------------------------------------------
def mask_value(kind: str, value: str) -> str:
    """Keep just enough to recognise the item: ``m***@gmail.com``, ``M*** G***``, ``****1111``."""
    if kind == "email":
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    if kind == "person":
        return " ".join(f"{w[:1].upper()}***" for w in value.split())
    if kind in ("credit_card", "ssn", "phone", "iban"):
        digits_seen = 0
        keep = 4 if kind != "phone" else 2
        total = sum(c.isalnum() for c in value)
        out = []
        for ch in value:
            if ch.isalnum():
                digits_seen += 1
                visible = digits_seen > total - keep or (kind == "iban" and digits_seen <= 2)
                out.append(ch if visible else "*")
            else:
                out.append(ch)
        return "".join(out)
    if kind == "ip":
        sep = ":" if ":" in value else "."
        head = value.split(sep)[0]
        return head + sep + sep.join("*" for _ in value.split(sep)[1:])
    return "***"


def redact(text: str, items: list[PiiItem] | None = None) -> str:
    """``text`` with every PII item (found now if not given) replaced by its mask."""
    if items is None:
        items = find_pii(text)
    out, pos = [], 0
    for it in sorted(items, key=lambda x: x.start):
        if it.start < pos:
            continue
        out.append(text[pos : it.start])
        out.append(it.masked)
        pos = it.end
    out.append(text[pos:])
    return "".join(out)
