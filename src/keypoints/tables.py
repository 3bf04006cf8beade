"""The one markdown table writer behind every report (benchmark, speed, sweep comparison)."""


def markdown(header: list[str], rows: list[list]) -> str:
    """A GitHub markdown table: `header` cells, then one line per row of already formatted cells."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, cells)) + " |" for cells in rows]
    return "\n".join(lines)
