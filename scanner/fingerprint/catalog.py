"""The model catalog (``scanner/data/models.yaml``): dimensions, truncation, norm and precision per model.

The catalog is data so that adding a model is a YAML edit. It is validated at load because a typo in a
field would otherwise silently change attributions: every error names the entry and the field.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

_NORMALIZED = {True: "true", False: "false", "native-only": "native-only", "unknown": "unknown"}
_PRECISIONS = {"f32", "fp16", "f64-widened", "f64", "unknown"}
_FIELDS = {
    "id",
    "provider",
    "family",
    "dim",
    "truncation",
    "normalized",
    "norm",
    "precision",
    "aliases",
    "local",
    "prior",
    "evidence",
}
_REQUIRED = {"id", "provider", "family", "dim", "normalized", "precision"}


class CatalogError(ValueError):
    """The catalog file is malformed; the message says which entry and field."""


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One catalog entry."""

    id: str
    provider: str
    family: str
    dim: int
    truncation: tuple[int, ...] | str  # documented sizes, or "any"
    normalized: str  # "true" | "false" | "native-only" | "unknown"
    norm: tuple[float, float] | None
    precision: str
    aliases: tuple[str, ...]
    local: bool
    prior: float
    evidence: str

    def accepts_dim(self, dim: int) -> bool:
        """True if the provider itself can emit ``dim`` values (native or documented truncation)."""
        if dim == self.dim:
            return True
        if self.truncation == "any":
            return dim < self.dim
        return dim in self.truncation

    def unit_norm_at(self, dim: int) -> bool | None:
        """Whether outputs of this size are unit-norm: True, False, or None when unknown."""
        if self.normalized == "true":
            return True
        if self.normalized == "false":
            return False
        if self.normalized == "native-only":
            return dim == self.dim
        return None


@dataclass(frozen=True, slots=True)
class Catalog:
    version: int
    models: tuple[ModelSpec, ...]

    def get(self, model_id: str) -> ModelSpec | None:
        for spec in self.models:
            if spec.id == model_id:
                return spec
        return None

    def resolve(self, name: str | None) -> ModelSpec | None:
        """The model a free-text name refers to (``text-embedding-3-small``, ``models/gemini-…``, ``llama3:latest``)."""
        if not name:
            return None
        wanted = normalize_name(name)
        for spec in self.models:
            if normalize_name(spec.id) == wanted or any(normalize_name(a) == wanted for a in spec.aliases):
                return spec
        # ``provider/name`` or ``name:tag`` forms of an alias
        tail = wanted.rsplit("/", 1)[-1]
        base = tail.split(":", 1)[0]
        for candidate in (tail, base):
            for spec in self.models:
                names = {
                    normalize_name(spec.id).rsplit("/", 1)[-1],
                    *(normalize_name(a) for a in spec.aliases),
                }
                if candidate in names:
                    return spec
        return None

    def by_dim(self, dim: int) -> list[ModelSpec]:
        """Models whose native size, or a documented truncation, is ``dim``."""
        return [spec for spec in self.models if spec.accepts_dim(dim)]


@functools.lru_cache(maxsize=4096)  # resolve() compares a hint against every catalog name, per vector
def normalize_name(name: str) -> str:
    name = name.strip().strip("\"'").lower()
    name = re.sub(r"^models/", "", name)
    return name


_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def default_path() -> Path:
    return Path(str(resources.files("scanner") / "data" / "models.yaml"))


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load and validate the catalog; raises :class:`CatalogError` with the entry and field at fault."""
    path = Path(path) if path is not None else default_path()
    try:
        # libyaml's loader when PyYAML has it: the pure-Python one costs 80 ms of every scan's start.
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)  # noqa: S506 - safe loaders only
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"{path}: cannot read catalog: {exc}") from exc
    return parse_catalog(doc, str(path))


def parse_catalog(doc: Any, where: str = "catalog") -> Catalog:
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), list):
        raise CatalogError(f"{where}: expected a mapping with a 'models' list")
    version = doc.get("version")
    if version != 1:
        raise CatalogError(f"{where}: unsupported catalog version {version!r} (expected 1)")
    models: list[ModelSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(doc["models"]):
        models.append(_parse_entry(entry, f"{where}: models[{index}]"))
        if models[-1].id in seen:
            raise CatalogError(f"{where}: models[{index}]: duplicate id {models[-1].id!r}")
        seen.add(models[-1].id)
    return Catalog(version=1, models=tuple(models))


def _parse_entry(entry: Any, where: str) -> ModelSpec:
    if not isinstance(entry, dict):
        raise CatalogError(f"{where}: expected a mapping")
    where = f"{where} ({entry.get('id', '?')})"
    unknown = set(entry) - _FIELDS
    if unknown:
        raise CatalogError(f"{where}: unknown field(s) {sorted(unknown)}")
    missing = _REQUIRED - set(entry)
    if missing:
        raise CatalogError(f"{where}: missing field(s) {sorted(missing)}")
    for key in ("id", "provider", "family"):
        if not isinstance(entry[key], str) or not entry[key]:
            raise CatalogError(f"{where}: '{key}' must be a non-empty string")
    if "/" not in entry["id"]:
        raise CatalogError(f"{where}: 'id' must look like provider/name")
    dim = entry["dim"]
    if not isinstance(dim, int) or isinstance(dim, bool) or not 1 <= dim <= 65536:
        raise CatalogError(f"{where}: 'dim' must be an integer in 1..65536, got {dim!r}")
    truncation = entry.get("truncation", [])
    if truncation == "any":
        trunc: tuple[int, ...] | str = "any"
    elif isinstance(truncation, list) and all(isinstance(t, int) and 0 < t <= 65536 for t in truncation):
        trunc = tuple(sorted(set(truncation)))
    else:
        raise CatalogError(f"{where}: 'truncation' must be 'any' or a list of positive integers")
    normalized = entry["normalized"]
    if normalized not in _NORMALIZED:
        raise CatalogError(f"{where}: 'normalized' must be true, false, native-only or unknown")
    norm = entry.get("norm")
    if norm is None:
        norm_range = None
    elif isinstance(norm, int | float) and not isinstance(norm, bool) and norm > 0:
        norm_range = (float(norm), float(norm))
    elif (
        isinstance(norm, list)
        and len(norm) == 2
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in norm)
        and 0 < norm[0] <= norm[1]
    ):
        norm_range = (float(norm[0]), float(norm[1]))
    else:
        raise CatalogError(f"{where}: 'norm' must be a positive number, [low, high] or null")
    precision = entry["precision"]
    if precision not in _PRECISIONS:
        raise CatalogError(f"{where}: 'precision' must be one of {sorted(_PRECISIONS)}")
    aliases = entry.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
        raise CatalogError(f"{where}: 'aliases' must be a list of strings")
    local = entry.get("local", False)
    if not isinstance(local, bool):
        raise CatalogError(f"{where}: 'local' must be true or false")
    prior = entry.get("prior", 1)
    if not isinstance(prior, int | float) or isinstance(prior, bool) or prior <= 0:
        raise CatalogError(f"{where}: 'prior' must be a positive number")
    return ModelSpec(
        id=entry["id"],
        provider=entry["provider"],
        family=entry["family"],
        dim=dim,
        truncation=trunc,
        normalized=_NORMALIZED[normalized],
        norm=norm_range,
        precision=precision,
        aliases=tuple(aliases),
        local=local,
        prior=float(prior),
        evidence=str(entry.get("evidence", "")),
    )
