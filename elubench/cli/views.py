"""Rich tables for the terminal: a net's layout and memory, the activations, the datasets, and the
results of `bench` and `signal`. No torch."""

from __future__ import annotations

from rich.table import Table


def _shape(shape) -> str:
    return "×".join(str(n) for n in shape)


def _si(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:g}"


def layout_table(layout, title: str) -> Table:
    # Numbers never wrap or truncate (min_width); the type column wraps on narrow terminals.
    widest_shape = max(len(_shape(r.out_shape)) for r in layout.rows)
    table = Table(title=title, show_footer=True, header_style="bold")
    table.add_column("stack", justify="right")
    table.add_column("layer", justify="right")
    table.add_column("type", "total")
    table.add_column("units", justify="right", min_width=5)
    table.add_column("kernel", justify="right", min_width=6)
    table.add_column(
        "output",
        justify="right",
        footer=_shape(layout.rows[-1].out_shape),
        min_width=max(widest_shape, len(_shape(layout.input_shape))),
    )
    table.add_column(
        "params",
        justify="right",
        footer=f"{layout.total_params:,}",
        min_width=len(f"{layout.total_params:,}"),
    )
    table.add_column("FLOPs", justify="right", footer=_si(layout.forward_flops), min_width=8)
    table.add_row("", "", "input", "", "", _shape(layout.input_shape), "", "")
    for row in layout.rows:
        kernel = ""
        if row.kind == "conv":
            kernel = f"{row.kernel}×{row.kernel}" + (f" /{row.stride}" if row.stride > 1 else "")
        elif row.kind == "fc":
            kernel = "FC"
        table.add_row(
            str(row.stack),
            str(row.layer or ""),
            row.description,
            str(row.units or ""),
            kernel,
            _shape(row.out_shape),
            f"{row.params:,}" if row.params else "",
            _si(row.flops) if row.flops else "",
        )
    return table


def activations_table(rows: list[dict]) -> Table:
    table = Table(
        title="activations (`name`, `name(value)` or `name(key=value)`; your own code: "
        "`file.py:attr`, `pkg.module:attr`)",
        header_style="bold",
    )
    for column in ("name", "formula", "parameters", "he-aware slope", "by", "source"):
        table.add_column(column)
    for row, previous in zip(rows, [{}] + rows):
        if row.get("registered") and not previous.get("registered"):
            table.add_section()  # below: what installed packages register (entry points)
        name = row["name"] + (f"\n[dim]alias {row['aliases']}[/dim]" if row["aliases"] else "")
        table.add_row(
            name,
            row["formula"],
            row["parameters"] or "-",
            row["he_aware_slope"],
            row["implemented_by"],
            row["source"],
        )
    return table


def bench_table(result: dict) -> Table:
    """`elubench bench`: A vs B, FLOP/s against the measured peak, activation step times."""
    title = (
        f"{result['spec_name']} (width {result['model_width']:g}, batch {result['batch_size']}) "
        f"on {result['device_name']}, {result['threads']} threads, {result['dtype']}, "
        f"torch {result['torch']}"
    )
    table = Table(title=title, header_style="bold")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("detail")

    def spread(s):
        return f"median of {s['repeats']}; min {s['min']:,.0f}, max {s['max']:,.0f}"

    table.add_row(
        "A: reference loop (img/s)",
        f"{result['reference_images_per_second']:,.0f}",
        spread(result["reference"]) + f"; {result['reference_workers']} loader workers",
    )
    table.add_row(
        "B: elubench engine (img/s)",
        f"{result['elubench_images_per_second']:,.0f}",
        spread(result["elubench"]),
    )
    table.add_row("speed-up B/A", f"{result['speedup']:.2f}×", "")
    table.add_row(
        "training FLOPs / image",
        _si(result["flops_per_image"]),
        "forward + backward, torch counter",
    )
    table.add_row("achieved FLOP/s (B)", _si(result["achieved_flops"]), "")
    table.add_row(
        "peak FLOP/s (matmul)",
        _si(result["peak_flops"]),
        "best of several sizes, before and after the loops, same dtype",
    )
    table.add_row(
        "fraction of peak",
        f"{100 * result['peak_fraction']:.0f} %",
        "above 100 %: the engine beat every matmul the probe timed"
        if result["peak_fraction"] > 1
        else "",
    )
    for name, ratio in result["activation_time_ratio"].items():
        table.add_row(
            f"step time {name} / relu",
            f"{ratio:.3f}",
            spread(result["activation_images_per_second"][name]),
        )
    costs, kernels = result.get("activation_microseconds", {}), result.get("activation_kernel", {})
    for name, us in costs.items():
        ratio = result["activation_cost_vs_relu"].get(name)
        kernel = "" if "[" in name else f"; {kernels.get(name, 'torch')} kernel (as trained)"
        table.add_row(
            f"{name} alone, fwd + bwd per step (µs)",
            f"{us:,.0f}",
            (f"{ratio:.2f}× relu's" if ratio is not None else "")
            + f"{kernel}; at the spec's hidden layer shapes",
        )
    if result.get("compile_seconds"):
        table.add_row(
            "compile + warm-up (s)",
            f"{max(result['compile_seconds'].values()):.1f}",
            "apart from the above",
        )
    return table


def memory_view(estimate, batch: int):
    """`show`: what one run needs (resources.RunEstimate), and a warning when it cannot fit in
    the memory this machine has available (on a GPU `run` checks the device's at run time)."""
    from rich.console import Group
    from rich.text import Text

    from elubench.core.machine import available_memory, trains_on_cpu
    from elubench.net.memory import human_bytes as b

    available, on_cpu = available_memory(), trains_on_cpu("auto")
    total = estimate.cpu_total if on_cpu else estimate.device_total
    items = [
        Text(
            f"memory of one run, estimated (fp32, batch {batch}): weights + gradients + "
            f"momentum {b(estimate.weights)}, activations {b(estimate.activations)} on a "
            f"CPU ({b(estimate.device_activations)} on a GPU), dataset {b(estimate.data)}; "
            f"in all about {b(estimate.cpu_total)} on a CPU, {b(estimate.device_total)} "
            "on a GPU",
            style="dim",
        )
    ]
    if not on_cpu:
        items.append(
            Text("training on a GPU: `run` checks its free memory before training", style="dim")
        )
    elif available is not None and total > available:
        items.append(
            Text(
                f"warning: more than the {b(available)} of memory available on this "
                "machine; `run` will refuse it (--no-memory-check trains anyway)",
                style="yellow",
            )
        )
    return Group(*items)


def signal_table(rows: list[dict], title: str) -> Table:
    """`elubench signal`: per configuration, the response std at the first, middle and last
    conv/FC layer (mean over seeds) and how much it shrank or grew through the net."""
    table = Table(title=title, header_style="bold")
    table.add_column("configuration")
    table.add_column("layers", justify="right")
    for name in ("first layer", "middle layer", "last layer", "last / first"):
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(
            row["config"],
            str(row["layers"]),
            f"{row['first']:.3g}",
            f"{row['middle']:.3g} (layer {row['middle_depth']})",
            f"{row['last']:.3g}",
            f"{row['last / first']:.3g}",
        )
    return table


def data_table(survey) -> Table:
    """`elubench data`: each dataset the specs need, each file it needs with its MD5 and how it
    was found (`survey` is catalog.Survey)."""
    from rich.markup import escape

    from elubench.data.catalog import OK, WRONG_MD5, WRONG_SIZE

    ready, count = sum(s.ok for s in survey.datasets), len(survey.datasets)
    table = Table(
        title=f"data folder {escape(str(survey.data_dir))} ({survey.origin})",
        caption=f"{ready} of {count} dataset{'s' * (count > 1)} ready",
        caption_justify="left",
        header_style="bold",
    )

    def where(status) -> str:  # a dataset's folder: under the data folder, by its path there
        try:
            return f"{status.folder.relative_to(survey.data_dir)}/"
        except ValueError:  # an image folder lives where its spec says
            return f"{status.folder}/"

    # The MD5 is never cut (a user compares it): it keeps its 32 characters on one line; file
    # names and spec paths fold rather than lose characters.
    table.add_column("dataset", overflow="fold")
    table.add_column("needed by", overflow="fold")
    table.add_column("file", overflow="fold")
    table.add_column("MD5", no_wrap=True, min_width=32)
    table.add_column("status", overflow="fold")
    for status in survey.datasets:
        table.add_section()
        needed_by = escape("\n".join(status.needed_by))
        if not status.files:
            table.add_row(
                status.dataset,
                needed_by,
                "-",
                "-",
                f"[green]no files:[/green] {escape(status.note)}",
            )
            continue
        for index, file in enumerate(status.files):
            if file.status == OK:
                state = "[green]ok[/green]" + (" (downloaded)" if status.downloaded else "")
            elif file.status == WRONG_MD5:
                state = f"[red]wrong checksum[/red]: found {file.found_md5}"
            elif file.status == WRONG_SIZE:
                state = f"[red]wrong size[/red]: {file.found_size:,} bytes, expected {file.size:,}"
            else:
                state = f"[red]{file.status}[/red]" + (
                    f": {escape(file.reason)}" if file.reason else ""
                )
            label = f"{status.dataset}\n[dim]{escape(where(status))}[/dim]" if index == 0 else ""
            table.add_row(
                label, needed_by if index == 0 else "", escape(file.name), file.md5 or "-", state
            )
    return table
