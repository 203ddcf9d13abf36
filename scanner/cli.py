"""The ``vecleak`` command line. Each subcommand is one module in :mod:`scanner.commands`.

Exit codes are part of the contract: 0 nothing at or above ``--fail-on``, 1 an error, 2 a usage
error, 3 alerts at or above ``--fail-on``.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import os
import sys
from collections.abc import Sequence

# The hot path's matrix products are small (a block's vectors against a few model signatures): BLAS
# worker threads only spin and contend, ~10x the CPU per vector. Set before numpy is first imported;
# an explicit setting in the environment wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def _keep_block_memory() -> None:
    """Ask glibc to keep freed multi-megabyte buffers rather than hand them back to the kernel.

    Sources read 4 MB blocks. By default glibc returns each freed block to the kernel (trimming the
    heap, or unmapping it), and the kernel faults and zeroes fresh pages for the next one: 100k page
    faults and 0.15 to 0.25 s of system time per GB scanned (BENCHMARKS.md). What it may keep is
    bounded (64 MB). Other C libraries and platforms: nothing to do.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(-3, 16 << 20)  # M_MMAP_THRESHOLD: blocks come from the heap, not a fresh mapping each
    mallopt(-1, 64 << 20)  # M_TRIM_THRESHOLD: and the heap keeps them once freed


_keep_block_memory()

from scanner import __version__  # noqa: E402 - after the BLAS settings above

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_FINDINGS = 3

# Subcommand modules; each exposes ``register(subparsers)`` and sets ``func`` to its ``run(args) -> int``.
COMMANDS = ("scan", "rules", "demo", "serve", "fingerprint", "es", "watch", "invert")


def error(message: str) -> None:
    """One plain, unwrapped line on stderr: error text is for grep and CI logs, not for layout."""
    print(f"error: {message}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vecleak",
        description="Find embedding vectors leaked into logs, traces and search indexes.",
    )
    parser.add_argument("--version", action="version", version=f"vecleak {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"scanner.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    finally:
        # Inversion workers a run left behind (Ctrl-C, an error) would hold its exit until their
        # vectors are done; a finished run closed its own. Only loaded where inversion ran.
        pools = sys.modules.get("scanner.inversion.pool")
        if pools is not None:
            pools.stop_all()
