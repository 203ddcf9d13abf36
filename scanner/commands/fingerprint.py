"""``vecleak fingerprint FILE``: which model made the vectors in a file, and why.

Scans FILE through the same pipeline as ``vecleak scan`` (detectors, then the embedding classifier), or
reads a ``.npy`` array, then prints for every distinct accepted vector its ranked model candidates with confidence and reasons, and the pooled answer for the whole
file (one source, one model). Raw values are never printed: vectors are named by line, size and a
SHA-256 prefix. Arrays the classifier rejects (histograms, softmax outputs, id lists) are counted, not
fingerprinted: a model guess for something that is not an embedding is a false lead.

Exit status (the CLI contract): 0 done (also when no vector was found), 1 FILE cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from scanner.model import ModelGuess, vector_sha256

MIN_DIM = 32


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "fingerprint",
        help="name the model that produced the vectors in a file",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("file", help="file to scan ('-' for stdin); a .npy file is read as vectors")
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per vector, then the pooled result"
    )
    parser.add_argument(
        "--model-hint", help="a model name known to have produced these vectors (evidence, not truth)"
    )
    parser.add_argument(
        "--no-context-hints", action="store_true", help="ignore model names printed next to vectors"
    )
    parser.add_argument("--brief", action="store_true", help="no reasons, one line per vector")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from scanner.fingerprint import SourceAggregator, default_fingerprinter

    try:
        data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    rows: list[dict[str, Any]] = []
    rejected = 0
    if args.file.endswith(".npy"):
        rows = _npy_rows(data, args.file)
    else:
        rows, rejected = _scan_rows(data, args.file, args.no_context_hints)
    if args.model_hint:
        for row in rows:
            row["hints"] = {"model": args.model_hint}
    fp = default_fingerprinter()
    pooled = SourceAggregator(fp)
    by_dim: dict[int, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_dim[int(row["values"].shape[0])].append(i)
    guesses: dict[int, list[ModelGuess]] = {}
    for idx in by_dim.values():
        matrix = np.stack([rows[i]["values"] for i in idx]).astype(np.float32)
        result = fp.guess_batch(matrix, [rows[i]["precision"] for i in idx], [rows[i]["hints"] for i in idx])
        guesses.update(zip(idx, result, strict=True))
        pooled.add(matrix)
    overall = pooled.result()
    out = sys.stdout
    for i, row in enumerate(rows):
        _print_row(out, row, guesses[i], fp, args)
    if args.json:
        print(
            json.dumps(
                {
                    "pooled": [_guess_json(g) for g in overall],
                    "vectors": len(rows),
                    "not_embeddings": rejected,
                }
            ),
            file=out,
        )
    else:
        print(f"\n{len(rows)} vector(s) in {args.file}", file=out)
        if rejected:
            print(f"{rejected} numeric array(s) judged not embeddings (not fingerprinted)", file=out)
        if rows:
            print("pooled (one source, one model): " + (_fmt(overall[0]) if overall else "unknown"), file=out)
            if not args.brief:
                for g in overall:
                    for reason in g.reasons:
                        print(f"    - {reason}", file=out)
    return 0


def _scan_rows(data: bytes, name: str, no_hints: bool) -> tuple[list[dict[str, Any]], int]:
    """Distinct vectors the scan pipeline accepts as embeddings, and how many arrays it rejected."""
    from scanner.model import Record, SourceRef
    from scanner.pipeline import Pipeline

    result = Pipeline().scan(Record(data=data, source=SourceRef("file", name, name)))
    for diag in result.diagnostics:
        print(f"vecleak fingerprint: {diag.kind}: {diag.message}", file=sys.stderr)
    rows: dict[str, dict[str, Any]] = {}
    for f in result.findings:
        c = f.candidate
        if f.kind != "embedding" or c.truncated or c.values.ndim != 1 or c.values.shape[0] < MIN_DIM:
            continue
        if not np.all(np.isfinite(c.values)):
            continue
        rows.setdefault(
            f.sha256,
            {
                "line": f.line,
                "encoding": c.encoding,
                "values": c.values,
                "precision": c.precision,
                "hints": {} if no_hints else dict(c.hints),
                "sha256": f.sha256,
            },
        )
    return list(rows.values()), result.rejected


def _npy_rows(data: bytes, name: str) -> list[dict[str, Any]]:
    import io

    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError) as exc:
        print(f"vecleak fingerprint: {name}: not a readable .npy array: {exc}", file=sys.stderr)
        return []
    arr = np.atleast_2d(np.asarray(arr, dtype=np.float32))
    if arr.ndim != 2:
        print(f"vecleak fingerprint: {name}: expected a 1-d or 2-d array, got {arr.ndim}-d", file=sys.stderr)
        return []
    return [
        {
            "line": i + 1,
            "encoding": "npy",
            "values": v,
            "precision": None,
            "hints": {},
            "sha256": vector_sha256(v),
        }
        for i, v in enumerate(arr)
        if v.shape[0] >= MIN_DIM
    ]


def _fmt(g: ModelGuess) -> str:
    extra = f", truncated from {g.truncated_from}" if g.truncated_from else ""
    extra += ", confirmed" if g.confirmed else ""
    return f"{g.model} ({g.confidence:.0%}{extra})"


def _guess_json(g: ModelGuess) -> dict[str, Any]:
    return {
        "model": g.model,
        "confidence": g.confidence,
        "truncated_from": g.truncated_from,
        "confirmed": g.confirmed,
        "reasons": list(g.reasons),
    }


def _print_row(
    out: Any, row: dict[str, Any], guesses: list[ModelGuess], fp: Any, args: argparse.Namespace
) -> None:
    dim = int(row["values"].shape[0])
    if args.json:
        print(
            json.dumps(
                {
                    "line": row["line"],
                    "dim": dim,
                    "encoding": row["encoding"],
                    "vector.sha256": row["sha256"],
                    "hints": row["hints"],
                    "candidates": [_guess_json(g) for g in guesses],
                }
            ),
            file=out,
        )
        return
    head = f"line {row['line']}: {dim} dims, {row['encoding']}, sha256 {row['sha256'][:12]}"
    if not guesses:
        matches = fp.dimension_matches(dim)
        print(f"{head}: unknown", file=out)
        if not args.brief:
            shown = ", ".join(matches[:6]) + (f" and {len(matches) - 6} more" if len(matches) > 6 else "")
            print(f"    - no signature fits; the size alone matches: {shown or 'no catalog model'}", file=out)
        return
    print(f"{head}: " + "; ".join(_fmt(g) for g in guesses), file=out)
    if not args.brief:
        for g in guesses[:1]:
            for reason in g.reasons:
                print(f"    - {reason}", file=out)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m scanner.commands.fingerprint FILE``) until scanner/cli.py lands."""
    parser = argparse.ArgumentParser(prog="vecleak")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["fingerprint", *(argv if argv is not None else sys.argv[1:])])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
