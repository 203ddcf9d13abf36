"""Rebuild ``scanner/data/signatures/*.npz`` from the real fixtures and the local MiniLM model.

    HF_HUB_OFFLINE=1 python -m scanner.fingerprint.build_signatures [--fixtures DIR] [--out DIR]

Sources are listed in ``scanner/data/signatures/sources.yaml``. Fixture vectors that are (near-)copies
of each other (the same vector in a request and in a response) are counted once. MiniLM is embedded
here from the ``"signature"`` split of :func:`scanner.fingerprint.reftext.reference_corpus` (stdlib
docstring sentences, query/ticket-style requests, template sentences); torch is imported only in this
script.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import yaml

from .extract import scan_bytes
from .reftext import reference_corpus, reference_texts
from .signature import build_signature, save_signature

DATA = Path(__file__).resolve().parent.parent / "data"
DEFAULT_FIXTURES = Path("/work/shared/fixtures/real")
DUPLICATE_COSINE = 0.9999


def load_sources(path: Path | None = None) -> dict:
    return yaml.safe_load((path or DATA / "signatures" / "sources.yaml").read_text(encoding="utf-8"))


def fixture_vectors(fixtures: Path, use: str | None = "signature") -> dict[str, list[tuple[str, np.ndarray]]]:
    """model id -> [(fixture file, vector)], distinct vectors only (near-copies dropped)."""
    out: dict[str, list[tuple[str, np.ndarray]]] = {}
    for entry in load_sources()["fixtures"]:
        if use is not None and entry["use"] != use:
            continue
        found, _ = scan_bytes((fixtures / entry["file"]).read_bytes(), entry["file"])
        bucket = out.setdefault(entry["model"], [])
        for f in found:
            add_distinct(bucket, entry["file"], f.candidate.values.astype(np.float64))
    return out


def add_distinct(bucket: list[tuple[str, np.ndarray]], name: str, v: np.ndarray) -> None:
    u = v / (np.linalg.norm(v) or 1.0)
    for _, w in bucket:
        if w.shape == v.shape and float(u @ (w / np.linalg.norm(w))) > DUPLICATE_COSINE:
            return
    bucket.append((name, v))


def embed_minilm(texts: list[str]) -> np.ndarray:
    """Through the one local-model registry (offline, the model's exact pipeline, normalised)."""
    from scanner.inversion.models import DEFAULT_MODEL, load_encoder  # noqa: PLC0415 - build-time only

    return load_encoder(DEFAULT_MODEL).embed_texts(texts).astype(np.float64)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES)
    parser.add_argument("--out", type=Path, default=DATA / "signatures")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    index = {}
    for model, items in sorted(fixture_vectors(args.fixtures).items()):
        vectors = np.array([v for _, v in items])
        sig = build_signature(model, vectors, tuple(sorted({name for name, _ in items})))
        save_signature(sig, args.out)
        index[model] = {"n": sig.n, "dim": sig.dim, "heldout": sig.heldout, "source": "real fixtures"}
    for entry in load_sources()["local"]:
        if entry.get("texts") == "corpus":
            texts, label = reference_corpus("signature"), "reftext.reference_corpus('signature')"
        else:
            texts, label = reference_texts(int(entry["count"])), "reftext.reference_texts"
        sig = build_signature(entry["model"], embed_minilm(texts), (f"{label}: {len(texts)} texts",))
        save_signature(sig, args.out)
        index[entry["model"]] = {
            "n": sig.n,
            "dim": sig.dim,
            "heldout": sig.heldout,
            "source": "local model, stdlib docstrings + generated texts",
        }
    (args.out / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for model, meta in sorted(index.items()):
        print(f"{model}: n={meta['n']} dim={meta['dim']} held-out={meta['heldout']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
