"""Rich renderings of plain results (tables for the terminal). No torch."""

from __future__ import annotations

from rich.table import Table


def _shape(shape) -> str:
    return "×".join(str(n) for n in shape)


def _si(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:g}"


def plan_table(plan, title: str) -> Table:
    table = Table(title=title, show_footer=True, header_style="bold")
    table.add_column("stack", justify="right")
    table.add_column("layer", justify="right")
    table.add_column("type", "total", no_wrap=True)
    table.add_column("units", justify="right")
    table.add_column("kernel", justify="right")
    table.add_column("output", justify="right", footer=_shape(plan.rows[-1].out_shape), no_wrap=True)
    table.add_column("params", justify="right", footer=f"{plan.total_params:,}")
    table.add_column("FLOPs", justify="right", footer=_si(plan.forward_flops))
    table.add_row("", "", "input", "", "", _shape(plan.input_shape), "", "")
    for row in plan.rows:
        kernel = ""
        if row.kind == "conv":
            kernel = f"{row.kernel}×{row.kernel}" + (f" /{row.stride}" if row.stride > 1 else "")
        elif row.kind == "fc":
            kernel = "FC"
        table.add_row(str(row.stack), str(row.layer or ""), row.description,
                      str(row.units or ""), kernel, _shape(row.out_shape),
                      f"{row.params:,}" if row.params else "", _si(row.flops) if row.flops else "")
    return table


def activations_table(rows: list[dict]) -> Table:
    table = Table(title="activations (`name`, `name(value)` or `name(key=value)`)", header_style="bold")
    for column in ("name", "formula", "parameters", "he-aware slope", "by", "source"):
        table.add_column(column)
    for row in rows:
        name = row["name"] + (f"\n[dim]alias {row['aliases']}[/dim]" if row["aliases"] else "")
        table.add_row(name, row["formula"], row["parameters"] or "-", row["he_aware_slope"],
                      row["implemented_by"], row["source"])
    return table
