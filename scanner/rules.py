"""Detection rules as data: YAML files in the spirit of Sigma and Falco.

A rule says which findings are alerts, at what level, and where they go. Every condition under
``match`` must hold (AND); a list inside one condition is any-of (OR). ``allow`` lists exceptions.
A glob list may exclude with a leading ``!`` (``encodings: ["!base64-*"]``).
A rule file with any error fails at load with ``file:line: reason``, every error at once, so a CI
check (``vecleak rules validate``) shows all of them in one run.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import sys
import sysconfig
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from scanner.model import Alert, Finding, Level

STATUSES = ("experimental", "test", "stable", "deprecated", "unsupported")
FINDING_KINDS = ("embedding", "plaintext-beside-vector", "vector-index")
PII_TYPES = ("email", "phone", "credit_card", "ssn", "iban", "ip", "person")
RULE_KEYS = {
    "id",
    "title",
    "description",
    "level",
    "status",
    "tags",
    "match",
    "allow",
    "outputs",
    "author",
    "references",
    "falsepositives",
}
MATCH_KEYS = {
    "paths", "sources", "encodings", "dims", "truncated", "models", "confidence", "score",
    "keys", "kinds", "labels", "pii", "text_regex", "confirmed",
}  # fmt: skip
ALLOW_KEYS = {"paths", "fields", "vector_sha256"}


class RuleError(ValueError):
    """One or more problems in rule files, each as ``file:line: reason``."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True, slots=True)
class Range:
    min: float | None = None
    max: float | None = None

    def __contains__(self, value: float | None) -> bool:
        if value is None:
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


@dataclass(slots=True)
class Rule:
    id: str
    title: str
    description: str
    level: Level
    status: str
    tags: tuple[str, ...]
    file: str
    line: int
    paths: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    encodings: tuple[str, ...] = ()
    dims: tuple[int, ...] | Range | None = None
    truncated: bool | None = None
    models: tuple[str, ...] = ()
    confidence: Range | None = None
    score: Range | None = None
    keys: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ("embedding",)
    labels: dict[str, str] = field(default_factory=dict)
    pii: tuple[str, ...] = ()
    text_regex: re.Pattern[str] | None = None
    confirmed: bool | None = None
    allow_paths: tuple[str, ...] = ()
    allow_fields: tuple[str, ...] = ()
    allow_sha256: frozenset[str] = frozenset()
    outputs: tuple[str, ...] = ()

    @property
    def needs_inversion(self) -> bool:
        return bool(self.pii or self.text_regex)

    def matches(self, f: Finding) -> bool:
        c = f.candidate
        if f.kind not in self.kinds:
            return False
        if self.paths and not _glob_any(f.source.display, self.paths):
            return False
        if self.sources and f.source.kind not in self.sources:
            return False
        if self.encodings and not _glob_any(c.encoding, self.encodings):
            return False
        if isinstance(self.dims, Range):
            if c.dim not in self.dims:
                return False
        elif self.dims and c.dim not in self.dims:
            return False
        if self.truncated is not None and c.truncated != self.truncated:
            return False
        top = f.model
        if self.models and not _glob_any(top.model if top else "unknown", self.models):
            return False
        if self.confidence is not None and (top.confidence if top else 0.0) not in self.confidence:
            return False
        if self.confirmed is not None and bool(top and top.confirmed) != self.confirmed:
            return False
        if self.score is not None and f.score not in self.score:
            return False
        if self.keys and not _glob_any(c.json_path or c.key or "", self.keys):
            return False
        for name, pattern in self.labels.items():
            value = f.source.labels.get(name, f.record_context.get(name))
            if value is None or not fnmatch.fnmatchcase(str(value), pattern):
                return False
        if self.needs_inversion:
            inv = f.inversion or {}
            if self.pii and not {p.get("type") for p in inv.get("pii", [])} & set(self.pii):
                return False
            if self.text_regex is not None and not self.text_regex.search(
                inv.get("text_clear") or inv.get("text") or ""
            ):
                return False
        return not self.allowed(f)

    def allowed(self, f: Finding) -> bool:
        if self.allow_paths and _glob_any(f.source.display, self.allow_paths):
            return True
        if self.allow_fields and _glob_any(f.candidate.json_path or f.candidate.key or "", self.allow_fields):
            return True
        return f.sha256 in self.allow_sha256


@dataclass(slots=True)
class RuleSet:
    rules: list[Rule]

    def evaluate(self, finding: Finding) -> list[Alert]:
        return [
            Alert(finding, rule.id, rule.title, rule.level, rule.tags, rule.outputs)
            for rule in self.rules
            if rule.status != "deprecated" and rule.matches(finding)
        ]

    @property
    def needs_inversion(self) -> bool:
        return any(rule.needs_inversion for rule in self.rules)

    def __len__(self) -> int:
        return len(self.rules)


def default_rules_dir() -> str:
    """The shipped pack: ``$VECLEAK_RULES``, else ``rules/`` beside the package in a checkout, else the
    copy a ``pip install`` puts under ``<prefix>/share/vecleak/rules``."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [
        os.environ.get("VECLEAK_RULES", ""),
        os.path.join(os.path.dirname(here), "rules"),
        os.path.join(sysconfig.get_path("data"), "share", "vecleak", "rules"),
        os.path.join(sys.prefix, "share", "vecleak", "rules"),
    ]
    for candidate in candidates:
        if candidate and os.path.isdir(candidate):
            return candidate
    raise FileNotFoundError("default rule pack not found: set VECLEAK_RULES or pass --rules")


def load_rules(paths: Iterable[str] | None = None) -> RuleSet:
    """Load rule files and directories (``*.yml``/``*.yaml``); raise RuleError listing every problem."""
    files = list(_rule_files(paths or [default_rules_dir()]))
    problems: list[str] = []
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for path in files:
        for rule in _load_file(path, problems):
            where = f"{rule.file}:{rule.line}"
            if rule.id in seen:
                problems.append(f"{where}: duplicate rule id {rule.id!r} (first defined at {seen[rule.id]})")
                continue
            seen[rule.id] = where
            rules.append(rule)
    if problems:
        raise RuleError(problems)
    return RuleSet(rules)


def _rule_files(paths: Iterable[str]) -> Iterator[str]:
    for path in paths:
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                if name.endswith((".yml", ".yaml")):
                    yield os.path.join(path, name)
        else:
            yield path


class _LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader that remembers the line of every mapping key, for ``file:line`` errors.

    On libyaml's parser when PyYAML has it (it reports the same marks): rule loading is part of
    every scan's start, and the pure-Python parser costs 15 ms of it.
    """


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = _LinedDict()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.lines[key] = key_node.start_mark.line + 1
    mapping.start = node.start_mark.line + 1
    return mapping


class _LinedDict(dict):
    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[Any, int] = {}
        self.start = 0

    def line(self, key: str) -> int:
        return self.lines.get(key, self.start)


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _load_file(path: str, problems: list[str]) -> list[Rule]:
    try:
        with open(path, encoding="utf-8") as fh:
            documents = list(yaml.load_all(fh, Loader=_LineLoader))  # noqa: S506 - SafeLoader subclass
    except OSError as exc:
        problems.append(f"{path}:0: cannot read: {exc.strerror}")
        return []
    except UnicodeDecodeError as exc:
        problems.append(f"{path}:0: not UTF-8: {exc.reason}")
        return []
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        problems.append(f"{path}:{line}: YAML syntax error: {getattr(exc, 'problem', None) or exc}")
        return []
    rules = []
    for doc in documents:
        if doc is None:
            continue
        if isinstance(doc, _LinedDict) and "rules" in doc and isinstance(doc["rules"], list):
            items = doc["rules"]
        else:
            items = [doc]
        for item in items:
            rule = _build(path, item, problems)
            if rule is not None:
                rules.append(rule)
    return rules


def _build(path: str, doc: Any, problems: list[str]) -> Rule | None:
    if not isinstance(doc, _LinedDict):
        problems.append(f"{path}:1: a rule must be a mapping, got {type(doc).__name__}")
        return None
    before = len(problems)

    def err(key: str, reason: str, where: _LinedDict = doc) -> None:
        problems.append(f"{path}:{where.line(key)}: {reason}")

    for key in doc:
        if key not in RULE_KEYS:
            err(key, f"unknown rule field {key!r} (allowed: {', '.join(sorted(RULE_KEYS))})")
    for key in ("id", "title", "level"):
        if key not in doc:
            err(key, f"rule is missing required field {key!r}")
    rule_id = doc.get("id")
    if "id" in doc and (not isinstance(rule_id, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]{1,100}", rule_id)):
        err("id", f"id must be a string of letters, digits, '.', '_' or '-', got {rule_id!r}")
    level = Level.informational
    if "level" in doc:
        try:
            level = Level.parse(str(doc["level"]))
        except ValueError as exc:
            err("level", str(exc))
    status = str(doc.get("status", "experimental"))
    if status not in STATUSES:
        err("status", f"unknown status {status!r} (expected one of: {', '.join(STATUSES)})")
    tags = _str_list(doc, "tags", err)
    outputs = _str_list(doc, "outputs", err)
    rule = Rule(
        id=str(rule_id),
        title=str(doc.get("title", "")),
        description=str(doc.get("description", "")),
        level=level,
        status=status,
        tags=tuple(tags),
        file=path,
        line=doc.start,
        outputs=tuple(outputs),
    )
    match = doc.get("match", _LinedDict())
    if not isinstance(match, _LinedDict):
        err("match", "match must be a mapping of conditions")
        match = _LinedDict()
    _parse_match(rule, match, lambda k, r: err(k, r, match))
    allow = doc.get("allow", _LinedDict())
    if not isinstance(allow, _LinedDict):
        err("allow", "allow must be a mapping")
        allow = _LinedDict()
    for key in allow:
        if key not in ALLOW_KEYS:
            err(key, f"unknown allow field {key!r} (allowed: {', '.join(sorted(ALLOW_KEYS))})", allow)
    rule.allow_paths = tuple(_str_list(allow, "paths", lambda k, r: err(k, r, allow)))
    rule.allow_fields = tuple(_str_list(allow, "fields", lambda k, r: err(k, r, allow)))
    hashes = _str_list(allow, "vector_sha256", lambda k, r: err(k, r, allow))
    for h in hashes:
        if not re.fullmatch(r"[0-9a-f]{64}", h):
            err("vector_sha256", f"not a lower-case SHA-256 hex digest: {h!r}", allow)
    rule.allow_sha256 = frozenset(hashes)
    return rule if len(problems) == before else None


def _parse_match(rule: Rule, match: _LinedDict, err: Any) -> None:
    for key in match:
        if key not in MATCH_KEYS:
            err(key, f"unknown match condition {key!r} (allowed: {', '.join(sorted(MATCH_KEYS))})")
    rule.paths = tuple(_str_list(match, "paths", err))
    rule.sources = tuple(_str_list(match, "sources", err))
    rule.encodings = tuple(_str_list(match, "encodings", err))
    rule.models = tuple(_str_list(match, "models", err))
    rule.keys = tuple(_str_list(match, "keys", err))
    if "kinds" in match:
        kinds = _str_list(match, "kinds", err)
        for kind in kinds:
            if kind not in FINDING_KINDS:
                err("kinds", f"unknown finding kind {kind!r} (expected: {', '.join(FINDING_KINDS)})")
        rule.kinds = tuple(kinds)
    pii = _str_list(match, "pii", err)
    for kind in pii:
        if kind not in PII_TYPES:
            err("pii", f"unknown PII type {kind!r} (expected: {', '.join(PII_TYPES)})")
    rule.pii = tuple(pii)
    if "dims" in match:
        value = match["dims"]
        if isinstance(value, _LinedDict):
            rule.dims = _range(value, "dims", err)
        elif isinstance(value, list) and all(isinstance(v, int) and v > 0 for v in value):
            rule.dims = tuple(value)
        elif isinstance(value, int) and value > 0:
            rule.dims = (value,)
        else:
            err("dims", "dims must be a positive integer, a list of them, or {min, max}")
    for key in ("confidence", "score"):
        if key in match:
            value = match[key]
            if isinstance(value, _LinedDict):
                setattr(rule, key, _range(value, key, err))
            else:
                err(key, f"{key} must be a mapping like {{min: 0.5}}")
    for key in ("truncated", "confirmed"):
        if key in match:
            if not isinstance(match[key], bool):
                err(key, f"{key} must be true or false")
            else:
                setattr(rule, key, match[key])
    if "labels" in match:
        labels = match["labels"]
        if not isinstance(labels, dict) or not all(isinstance(v, str | int) for v in labels.values()):
            err("labels", "labels must map label names to glob strings")
        else:
            rule.labels = {str(k): str(v) for k, v in labels.items()}
    if "text_regex" in match:
        try:
            rule.text_regex = re.compile(str(match["text_regex"]))
        except re.error as exc:
            err("text_regex", f"invalid regular expression: {exc}")


def _range(value: _LinedDict, key: str, err: Any) -> Range | None:
    extra = set(value) - {"min", "max"}
    if extra:
        err(key, f"{key} range takes only min and max, not {', '.join(sorted(map(str, extra)))}")
        return None
    lo, hi = value.get("min"), value.get("max")
    for bound in (lo, hi):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int | float)):
            err(key, f"{key} bounds must be numbers, got {bound!r}")
            return None
    if lo is not None and hi is not None and lo > hi:
        err(key, f"{key} min {lo} is above max {hi}")
        return None
    return Range(lo, hi)


def _str_list(doc: dict, key: str, err: Any) -> list[str]:
    if key not in doc:
        return []
    value = doc[key]
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in value
    ):
        return [str(v) for v in value]
    err(key, f"{key} must be a string or a list of strings")
    return []


def _glob_any(value: str, patterns: tuple[str, ...]) -> bool:
    """Any positive glob matches and no ``!``-prefixed glob does; only negatives means "all but"."""
    positive, negative = _compiled_globs(patterns)
    if negative is not None and negative.match(value):
        return False
    return positive is None or positive.match(value) is not None


@functools.lru_cache(maxsize=1024)
def _compiled_globs(patterns: tuple[str, ...]) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    """One regex for a rule's positive globs and one for its negatives: rules run on every finding."""
    positives = [fnmatch.translate(p) for p in patterns if not p.startswith("!")]
    negatives = [fnmatch.translate(p[1:]) for p in patterns if p.startswith("!")]
    return (
        re.compile("|".join(positives)) if positives else None,
        re.compile("|".join(negatives)) if negatives else None,
    )
