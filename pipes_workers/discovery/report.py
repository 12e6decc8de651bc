"""The human part of `dataloader discover`'s output: one line per table, as SQL comments so the whole
output stays a runnable SQL script."""

from __future__ import annotations

from collections.abc import Sequence

from pipes_workers.discovery.proposal import Proposal, watermark_column

HEADERS = ("table", "rows", "size", "key", "watermark", "refused", "strategy", "why")


def size_text(size: int | None) -> str:
    """`12 kB`, `3.4 MB`… (`?` when unknown)."""
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" or value >= 10 else f"{value:.1f} {unit}"
        value /= 1024
    return "?"  # not reached


def table_lines(proposals: Sequence[Proposal], registered: set[tuple[str | None, str]]) -> list[str]:
    """The table of proposals, aligned, each line starting with `-- `."""
    rows = [HEADERS]
    for p in proposals:
        t = p.table
        key = ", ".join(t.primary_key) + f" ({t.key_origin})" if t.primary_key else "none"
        watermark = watermark_column(t)
        if (t.schema, t.name) in registered:
            strategy, why = "registered", "already in table_control: skipped"
        elif p.load_strategy is None:
            strategy, why = "skipped", p.skip_reason or ""
        else:
            strategy, why = p.load_strategy, p.reason
        rows.append((
            t.name, "?" if t.estimated_rows is None else str(t.estimated_rows), size_text(t.estimated_bytes),
            key, watermark.name if watermark else "-", ", ".join(c.name for c in t.refused) or "-", strategy, why,
        ))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS) - 1)]
    return [
        "-- " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1] for r in rows
    ]
