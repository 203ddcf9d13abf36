"""``vecleak invert [FILE|-]``: turn leaked vectors back into text, one JSON line per vector.

Input: one vector per line (a JSON array), or any line the detectors understand (a vector inside a
log line, base64 floats, ...). Output: JSONL in input order with ``text``, ``cosine``, ``steps``,
``seconds``, ``model`` and ``pii``, also with ``--jobs N`` (N vectors inverted at once, in worker
processes: ``scanner.inversion.pool``). Text and PII values are redacted unless ``--reveal``. A vector that
cannot be inverted (wrong dimension, zero, NaN, cut off) gets a line with ``error`` and the run goes
on. Raw vectors are never printed: lines carry the vector's SHA-256.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

from scanner.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, error
from scanner.model import SourceRef, vector_sha256


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "invert",
        help="reconstruct the text behind leaked embedding vectors",
        description="Reconstruct text from embedding vectors (one JSON array per line, or any line "
        "the detectors understand) with a local model, and report PII found in it.",
    )
    p.add_argument("file", nargs="?", default="-", metavar="FILE", help="input file, or - for stdin")
    p.add_argument(
        "--model",
        default="sentence-transformers/all-MiniLM-L6-v2",
        help="registered model id, alias, or path to a local sentence-transformers folder",
    )
    p.add_argument(
        "--budget",
        type=int,
        default=None,
        help="candidate texts re-embedded per vector (default: 2500)",
    )
    p.add_argument(
        "--method",
        default="words",
        choices=("words", "tokens"),
        help="search over whole words (default) or wordpieces (the older, weaker search)",
    )
    p.add_argument("--max-seconds", type=float, default=None, help="wall-clock cap per vector")
    p.add_argument(
        "--first-guess",
        action="store_true",
        help="where the search is stuck, also repair the trained decoder's guess (all-MiniLM-L6-v2 only)",
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (GPU when present)")
    p.add_argument(
        "--threads",
        type=int,
        default=2,
        help="CPU threads for torch in all (default 2); --jobs shares them out between its workers",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="invert N vectors at once, one worker process each (default 1). More vectors a second "
        "on a file of many; each worker loads its own model",
    )
    p.add_argument("--reveal", action="store_true", help="print clear text and PII (default: redacted)")
    p.add_argument(
        "--known",
        metavar="FILE",
        help="sensitive strings, one per line: report whether each vector is (or contains) one",
    )
    p.add_argument("-o", "--output", default="-", help="output JSONL file (default stdout)")
    p.set_defaults(func=run)


def iter_vectors(stream: IO[bytes], display: str) -> Iterator[tuple[int, np.ndarray | None, str | None]]:
    """(line number, vector or None, error) for every vector in the input, in order."""
    pipeline = None
    source = SourceRef("file", display, display)
    for lineno, raw in enumerate(stream, start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            value = None
        if isinstance(value, list):
            try:
                yield lineno, np.asarray(value, dtype=np.float64), None
            except (TypeError, ValueError):
                yield lineno, None, "not an array of numbers"
            continue
        # Not a bare array: let the detectors find vectors inside the line (logs, base64, ...).
        if pipeline is None:
            from scanner.model import Record
            from scanner.pipeline import Pipeline

            pipeline = Pipeline()
            record_type = Record
        cands, _diags = pipeline.candidates(record_type(data=line, source=source, line=lineno))
        if not cands:
            hint = " (truncated print?)" if line.startswith(b"[") else ""
            yield lineno, None, f"no vector found on this line{hint}"
        for cand in cands:
            if cand.truncated:
                yield lineno, None, "vector is truncated (cut off in the log)"
            else:
                yield lineno, np.asarray(cand.values, dtype=np.float64), None


def run(args: argparse.Namespace) -> int:
    from scanner import inversion
    from scanner.inversion.models import resolve
    from scanner.inversion.pool import InversionPool

    if not inversion.available():
        error("inversion needs torch and transformers: pip install 'vecleak[invert]'")
        return EXIT_ERROR
    if args.jobs < 1 or args.threads < 1:
        error("--jobs and --threads must be at least 1")
        return EXIT_USAGE
    try:
        model_id = resolve(args.model).model_id
    except KeyError as exc:
        error(str(exc.args[0]) if exc.args else str(exc))
        return EXIT_USAGE
    known: list[str] = []
    if args.known:
        known = [s for s in Path(args.known).read_text(encoding="utf-8").splitlines() if s.strip()]
    factory = partial(
        inversion.Inverter,
        args.model,
        device=args.device,
        budget=args.budget,
        threads=max(1, args.threads // args.jobs),
        max_seconds=args.max_seconds,
        method=args.method,
        first_guess=args.first_guess,
    )
    try:
        pool = InversionPool(factory, args.jobs, known)
    except BrokenProcessPool:
        error(f"cannot load model {args.model} in the workers (their error is above)")
        return EXIT_ERROR
    except (OSError, RuntimeError, ValueError) as exc:
        error(f"cannot load model {args.model}: {exc}")
        return EXIT_ERROR

    stream = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
    out = sys.stdout.buffer if args.output == "-" else open(args.output, "wb")  # noqa: SIM115
    try:
        with pool:
            lines = enumerate(iter_vectors(stream, args.file))
            for (index, (lineno, vector, problem)), done in pool.map(lines, _vector_to_invert):
                row: dict[str, Any] = {"index": index, "line": lineno, "model": model_id}
                if vector is not None:
                    row["vector_sha256"] = vector_sha256(np.nan_to_num(vector.astype(np.float32)))
                if done is not None and done.result is not None:
                    row.update(done.result.to_dict(reveal=args.reveal))
                    if done.known is not None:
                        row["known"] = done.known
                problem = problem if done is None else done.error
                if problem is not None:
                    row["error"] = problem
                out.write(orjson.dumps(row) + b"\n")
                out.flush()
    except BrokenProcessPool as exc:
        error(f"an inversion worker died (its error is above): {exc}")
        return EXIT_ERROR
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
        if out is not sys.stdout.buffer:
            out.close()
    return EXIT_OK


def _vector_to_invert(line: tuple[int, tuple[int, np.ndarray | None, str | None]]) -> np.ndarray | None:
    """The vector of an ``(index, iter_vectors item)`` pair, or None where the line is already bad."""
    _index, (_lineno, vector, problem) = line
    return vector if problem is None else None
