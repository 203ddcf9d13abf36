"""``vecleak rules validate|list``: check rule files the way a CI job would."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from scanner.cli import EXIT_ERROR, EXIT_OK
from scanner.rules import RuleError, RuleSet, load_rules


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rules", help="validate or list detection rules")
    rsub = p.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    v = rsub.add_parser("validate", help="check rule files; print file:line: reason for every error")
    v.add_argument(
        "paths", nargs="*", metavar="PATH", help="rule files or directories (default: the shipped pack)"
    )
    v.set_defaults(func=validate)
    ls = rsub.add_parser("list", help="list the rules that would run")
    ls.add_argument("paths", nargs="*", metavar="PATH")
    ls.set_defaults(func=list_rules)


def validate(args: argparse.Namespace) -> int:
    rules = _load(args.paths)
    if rules is None:
        return EXIT_ERROR
    print(f"{len(rules)} rule(s) OK")
    return EXIT_OK


def list_rules(args: argparse.Namespace) -> int:
    rules = _load(args.paths)
    if rules is None:
        return EXIT_ERROR
    table = Table(title="vecleak rules")
    for col in ("id", "level", "status", "title", "file"):
        table.add_column(col, overflow="fold")
    for r in rules.rules:
        table.add_row(r.id, r.level.name, r.status, r.title, f"{r.file}:{r.line}")
    Console().print(table)
    return EXIT_OK


def _load(paths: list[str]) -> RuleSet | None:
    """The rules of ``paths`` (the shipped pack when empty), or None after printing every problem."""
    try:
        return load_rules(paths or None)
    except RuleError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} error(s)", file=sys.stderr)
        return None
