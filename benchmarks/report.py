"""What the benchmarks share: markdown tables, and the report printed and written to a file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [f"| {' | '.join(header)} |", "|" + "---|" * len(header), *(f"| {' | '.join(r)} |" for r in rows)]


def write_report(lines: Sequence[str], out: Path | None) -> None:
    """Print the report's lines, and write them to ``out`` unless it is None."""
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out}")
