"""The one plain-text table every command prints: a header, a rule, aligned columns."""

from __future__ import annotations

from collections.abc import Sequence


def render(header: Sequence[str], rows: Sequence[Sequence[object]], footer: str | None = None) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    # The last column is not padded: no trailing blanks.
    lines = ["  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=False)) + "  " + row[-1] for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if footer is not None:
        lines.append(footer)
    return "\n".join(line.rstrip() for line in lines)
