"""``vecleak watch GLOB...``: follow log files as a sidecar/DaemonSet/systemd service until SIGTERM."""

from __future__ import annotations

import argparse

from scanner.cli import EXIT_ERROR, error
from scanner.rules import RuleError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "watch",
        help="follow log files and alert as vectors appear (runs until SIGTERM)",
        description=(
            "Follow files matching each PATH or GLOB (new files are picked up, rotation is handled) and "
            "deliver alerts at least once, with stable ids. Settings come from --config, then VECLEAK_* "
            "environment variables (e.g. VECLEAK_STATE, VECLEAK_OUTPUT=a,b), then these flags."
        ),
    )
    p.add_argument("paths", nargs="*", metavar="PATH|GLOB", help="files to follow (quote globs)")
    p.add_argument("--config", metavar="FILE", help="YAML settings file (keys as the long options)")
    p.add_argument("--state", metavar="PATH", help="SQLite state file, created 0600 (offsets, alert ids)")
    p.add_argument(
        "--output",
        action="append",
        default=[],
        metavar="SINK:TARGET",
        help="where alerts go, e.g. jsonl:/var/lib/vecleak/alerts.jsonl (repeatable; default jsonl:-)",
    )
    p.add_argument("--rules", action="append", default=[], metavar="PATH", help="rule file or folder")
    p.add_argument("--listen", metavar="HOST:PORT", help="serve /healthz and /metrics here")
    p.add_argument("--poll", action="store_true", default=None, help="poll only (no inotify)")
    p.add_argument("--poll-interval", type=float, metavar="S", help="seconds between polls (0.25)")
    p.add_argument(
        "--flush-partial-after",
        type=float,
        metavar="S",
        help="scan a final line without newline after S seconds (5)",
    )
    p.add_argument(
        "--rotate-wait", type=float, metavar="S", help="keep a rotated file open S idle seconds (2)"
    )
    p.add_argument("--read-from", choices=("beginning", "end"), help="where to start files found at launch")
    p.add_argument("--max-record", type=int, metavar="BYTES", help="longest window of one line (8 MiB)")
    p.add_argument("--queue-bytes", type=int, metavar="BYTES", help="analysis queue bound (16 MiB)")
    p.add_argument("--enricher", metavar="MODULE:FACTORY", help="inversion hook (default scanner.inversion)")
    p.add_argument("--invert-sample", type=float, metavar="FRACTION", help="share of alerts inverted (0.1)")
    p.add_argument("--invert-rate", type=float, metavar="PER_S", help="inversions per second at most (1)")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scanner.daemon import Daemon, load_config, setup_logging
    from scanner.state import StateError

    overrides = {k: v for k, v in vars(args).items() if k not in ("func", "command", "config")}
    try:
        cfg = load_config(args.config, overrides)
        if not cfg.paths:
            error("nothing to watch: give PATH|GLOB arguments or paths: in --config")
            return EXIT_ERROR
        setup_logging(cfg.log_level)
        daemon = Daemon(cfg)
    except RuleError as exc:
        for problem in exc.problems:
            error(problem)
        return EXIT_ERROR
    except (OSError, ValueError, StateError) as exc:
        error(str(exc))
        return EXIT_ERROR
    return daemon.run_forever()
