"""A human table for terminals (rich): one row per alert, then a summary of what was scanned."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from scanner.model import Alert, Diagnostic

_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "informational": "dim"}


class TableSink:
    name = "table"

    def __init__(self, console: Console, reveal: bool = False) -> None:
        self.console = console
        self.reveal = reveal  # clear inverted text (scan --reveal); masked otherwise
        self.alerts: list[Alert] = []
        self.diagnostics: list[Diagnostic] = []

    def send(self, alert: Alert) -> None:
        self.alerts.append(alert)

    def diagnostic(self, diag: Diagnostic) -> None:
        self.diagnostics.append(diag)

    def close(self, summary: dict[str, Any]) -> None:
        if self.alerts:
            table = Table(title=f"vecleak: {len(self.alerts)} alert(s)", show_lines=False)
            inverted = any(a.finding.inversion for a in self.alerts)
            cols = ("level", "rule", "location", "dim", "encoding", "model", "sha256")
            for col in cols + (("inverted text (cosine)",) if inverted else ()):
                table.add_column(col, overflow="fold")
            for a in sorted(self.alerts, key=lambda a: (-a.level, a.finding.source.display, a.finding.line)):
                f = a.finding
                top = f.model
                model = f"{top.model} ({top.confidence:.2f})" if top else "unknown"
                where = f.record_context.get("es_display") or f"{f.source.display}:{f.line}"
                dim = f"{f.candidate.dim}{' (truncated)' if f.candidate.truncated else ''}"
                row = [
                    f"[{_STYLE[a.level.name]}]{a.level.name}[/]",
                    a.rule_id + (f" (+{a.count} grouped)" if a.group is not None else ""),
                    where,
                    dim,
                    f.candidate.encoding,
                    model,
                    f.sha256[:12],
                ]
                if inverted:
                    row.append(_inversion_cell(f.inversion, self.reveal))
                table.add_row(*row)
            self.console.print(table)
        else:
            self.console.print("[green]No embedding leaks found.[/]")
        self.console.print(_summary_line(summary))
        if self.diagnostics:
            kinds: dict[str, int] = {}
            for d in self.diagnostics:
                kinds[d.kind] = kinds.get(d.kind, 0) + 1
            listed = ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items()))
            self.console.print(f"[yellow]Input problems (scanned around them): {listed}[/]")
            for d in self.diagnostics[:10]:
                at = f":{d.line}" if d.line else ""
                self.console.print(f"  [dim]{d.kind}[/] {d.source}{at}: {d.message}")
            if len(self.diagnostics) > 10:
                self.console.print(f"  … and {len(self.diagnostics) - 10} more (use --format jsonl for all)")


def _inversion_cell(inversion: dict[str, Any] | None, reveal: bool) -> str:
    if not inversion:
        return ""
    text = (inversion.get("text_clear") if reveal else None) or inversion.get("text") or ""
    return f"{escape(text)} ({float(inversion.get('cosine', 0.0)):.3f})"


def _summary_line(s: dict[str, Any]) -> str:
    return (
        f"Scanned {s.get('files', 0)} file(s), {s.get('bytes', 0):,} bytes in {s.get('seconds', 0):.2f}s; "
        f"{s.get('findings', 0)} embedding finding(s), {s.get('alerts', 0)} alert(s), "
        f"{s.get('rejected', 0)} numeric array(s) judged not embeddings, {s.get('diagnostics', 0)} input problem(s)."
        + (
            f" Noise control folded {s.get('grouped', 0)} grouped and {s.get('rate_limited', 0)} rate-limited"
            f" alert(s) into {s.get('rollups', 0)} roll-up(s)."
            if s.get("grouped") or s.get("rate_limited")
            else ""
        )
    )


def open(target: str, **options: Any) -> TableSink:  # noqa: A001 - the sink-module convention
    return TableSink(
        options.get("console") or Console(file=sys.stdout), reveal=bool(options.get("reveal", False))
    )
