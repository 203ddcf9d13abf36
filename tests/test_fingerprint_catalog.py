"""The model catalog and signature files: loaded, validated, named errors for bad entries."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml

from scanner.fingerprint import CatalogError, load_catalog
from scanner.fingerprint.catalog import default_path, parse_catalog
from scanner.fingerprint.signature import build_signature, load_signature, save_signature


@pytest.fixture(scope="module")
def doc():
    return yaml.safe_load(default_path().read_text())


def test_catalog_has_at_least_30_models_with_the_issue_ids():
    cat = load_catalog()
    assert len(cat.models) >= 30
    for model_id in (
        "sentence-transformers/all-MiniLM-L6-v2",
        "openai/text-embedding-ada-002",
        "openai/text-embedding-3-small",
        "cohere/embed-english-light-v3.0",
        "mistral/mistral-embed",
        "google/gemini-embedding-001",
        "voyage/voyage-3-lite",
        "ollama/llama3",
    ):
        assert cat.get(model_id) is not None, model_id


def test_aliases_resolve_names_seen_in_payloads():
    cat = load_catalog()
    assert cat.resolve("models/gemini-embedding-001").id == "google/gemini-embedding-001"
    assert cat.resolve("text-embedding-ada-002-v2").id == "openai/text-embedding-ada-002"
    assert cat.resolve("llama3:latest").id == "ollama/llama3"
    assert cat.resolve("openai/text-embedding-3-small").id == "openai/text-embedding-3-small"
    assert cat.resolve("davinci-002") is None


def test_truncation_and_norm_semantics():
    cat = load_catalog()
    small = cat.get("openai/text-embedding-3-small")
    assert small.accepts_dim(256) and small.accepts_dim(1536) and not small.accepts_dim(3072)
    assert not cat.get("openai/text-embedding-ada-002").accepts_dim(512)
    gemini = cat.get("google/gemini-embedding-001")
    assert gemini.unit_norm_at(3072) is True and gemini.unit_norm_at(768) is False
    assert cat.get("ollama/llama3").unit_norm_at(4096) is False


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["models"][0].update(dimm=3), "unknown field"),
        (lambda d: d["models"][0].update(dim="1536"), "'dim' must be an integer"),
        (lambda d: d["models"][0].pop("provider"), "missing field"),
        (lambda d: d["models"][1].update(id=d["models"][0]["id"]), "duplicate id"),
        (lambda d: d["models"][0].update(truncation="some"), "'truncation'"),
        (lambda d: d["models"][0].update(norm=[2, 1]), "'norm'"),
        (lambda d: d.update(version=7), "unsupported catalog version"),
    ],
)
def test_bad_catalog_entries_are_named(doc, mutate, message):
    bad = copy.deepcopy(doc)
    mutate(bad)
    with pytest.raises(CatalogError, match=message):
        parse_catalog(bad, "models.yaml")


def test_signature_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.standard_normal(64)
    vectors = base + 0.8 * rng.standard_normal((5, 64))
    sig = build_signature("test/model", vectors, ("synthetic",))
    assert sig.heldout == "loo" and sig.n == 5 and sig.grid[-1] == 64
    loaded = load_signature(save_signature(sig, tmp_path))
    assert loaded.model == "test/model" and loaded.sources == ("synthetic",)
    np.testing.assert_array_equal(loaded.mean, sig.mean)
    assert loaded.stats_at(48)[0] == pytest.approx(sig.stats_at(48)[0])
