"""Rich renderings of what `run --dry-run` and `export` report: the matrix as it stands, its
estimated wall time and what its seeds can show; an export's progress and outcome."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.progress import TaskID


def matrix_table(configs, state, title: str) -> Table:
    """Per configuration: seeds done, failed (to retry), started (checkpoint) and left."""
    rows: dict[str, dict[str, int]] = {}
    for cfg in configs:
        row = rows.setdefault(cfg.config, {"done": 0, "failed": 0, "started": 0, "left": 0})
        if cfg.run_id in state.done:
            row["done"] += 1
        else:
            row["left"] += 1
            row["failed"] += cfg.run_id in state.failed
            row["started"] += cfg.run_id in state.started
    table = Table(title=title, header_style="bold")
    table.add_column("configuration")
    for column in ("done", "left", "of which failed before", "of which checkpointed"):
        table.add_column(column, justify="right")
    for config, row in rows.items():
        table.add_row(
            config, str(row["done"]), str(row["left"]), str(row["failed"]), str(row["started"])
        )
    return table


def dry_run_view(dry, spec):
    """`run --dry-run`: the matrix table, a warning if the folder holds another spec version,
    and the estimated wall time of what is left (`dry` is execution.dry_run.DryRun)."""
    from rich.console import Group
    from rich.markup import escape
    from rich.text import Text

    items: list[RenderableType] = []
    if dry.other_version:
        items.append(
            Text(
                f"{dry.folder} holds runs of another version of this spec; `run` will "
                "refuse unless given --force or another --results",
                style="yellow",
            )
        )
    items.append(matrix_table(dry.configs, dry.state, f"{spec.name} (spec hash {spec.hash})"))
    for run_id, why in dry.state.damaged.items():
        items.append(Text(f"{run_id} will not be trained: {why}", style="yellow"))
    if dry.data is not None:
        items.append(data_line(dry.data))
    guess = dry.estimate
    most = "at most " if dry.forecast is not None else ""  # the sequential design's pool
    if guess is not None:
        layout = ""
        if guess.device == "cpu":
            layout = (
                f", {guess.at_once} at once" if guess.at_once > 1 else ", one at a time"
            ) + f", {guess.threads} thread{'s' * (guess.threads > 1)} each"
        items.append(
            Text.from_markup(
                f"estimate on {guess.device}: {most}{guess.runs} runs{layout} × ({guess.iterations:,} steps × "
                f"{guess.step_seconds * 1000:.1f} ms + {guess.evaluations} evaluations × "
                f"{human_seconds(guess.eval_seconds)}) = [bold]{human_seconds(guess.total_seconds)}[/bold] "
                f"({human_seconds(guess.run_seconds)} per run, timed on {escape(str(dry.timed_on))})"
            )
        )
    other = dry.alternative
    if guess is not None and other is not None:
        faster = other.total_seconds < 0.9 * guess.total_seconds
        items.append(
            Text(
                f"one run at a time on all {other.threads} cores instead: {other.step_seconds * 1000:.1f} ms "
                f"a step, {human_seconds(other.total_seconds)} in all"
                + (
                    f" (faster for this net: --threads {other.threads} --parallel 1; the thread count "
                    "changes a run's float sums, so keep one count per results folder)"
                    if faster
                    else ""
                ),
                style="yellow" if faster else "dim",
            )
        )
    if dry.reach:
        items.append(significance_table(dry.reach))
    if dry.forecast is not None:
        items.append(forecast_table(dry.forecast))
    return Group(*items)


def forecast_table(forecast) -> Table:
    """`run --dry-run --until-decided`: the design simulated against the fixed one
    (execution.dry_run.Forecast)."""
    f = forecast
    table = Table(
        title=f"sequential design (at most {f.max_seeds} seeds) against the fixed "
        f"{f.fixed_seeds} seeds: {f.comparisons} {f.family}, simulated",
        header_style="bold",
    )
    for column in ("d_z", "power", "fixed power", "seeds a comparison used", "runs vs fixed"):
        table.add_column(column, justify="right")
    for row in f.rows:
        table.add_row(
            f"{row.effects[0]:g}",
            "–" if row.power.value != row.power.value else f"{row.power.value:.2f}",
            "–"
            if row.fixed_power.value != row.fixed_power.value
            else f"{row.fixed_power.value:.2f}",
            f"{row.seeds:.1f}",
            f"{row.runs_ratio:.0%}",
        )
    fwer = [row.fwer for row in f.rows if row.fwer.value == row.fwer.value]
    table.caption = (
        f"{f.simulations:,} simulated matrices per row: each of the {f.comparisons} comparisons "
        "at effect d_z (mean over sd of its paired differences; 0: no effect), normal "
        "differences, sharing the baseline's noise; power: each comparison decided in the "
        "effect's direction; runs: the family's configurations' runs, the design's over the "
        "fixed design's"
        + (f"; family-wise error at d_z 0: {fwer[0].value:.3f}" if fwer else "")
        + ". The BN families, decided alongside, can keep configurations training longer."
    )
    return table


def data_line(status):
    """One line on a spec's dataset (catalog.DatasetStatus), for `run --dry-run`."""
    from rich.text import Text

    if not status.files:
        return Text(f"data: {status.dataset}, no files ({status.note})", style="dim")
    where = f"data: {status.dataset} in {status.folder}"
    if status.ok:
        return Text(f"{where}: {len(status.files)} files, all there and intact", style="dim")
    counts: dict[str, int] = {}
    for file in status.bad:
        counts[file.status] = counts.get(file.status, 0) + 1
    what = ", ".join(f"{n} {state}" for state, n in counts.items())
    return Text(
        f"{where}: {what} of {len(status.files)} files, not ready "
        "(`elubench data SPEC` says why and how to fix it)",
        style="yellow",
    )


def dry_run_total(dries):
    """`run --dry-run` of several specs: their runs together and the estimated wall time of
    what is left, the specs trained one after another (`dries`: execution.dry_run.DryRun, one per spec)."""
    from rich.text import Text

    runs = sum(len(p.configs) for p in dries)
    done, left = sum(len(p.state.done) for p in dries), sum(len(p.state.todo) for p in dries)
    damaged = sum(len(p.state.damaged) for p in dries)
    text = Text(
        f"{len(dries)} specs: {runs} runs, {done} done, {left} to train"
        + (f", {damaged} left out (damaged)" if damaged else ""),
        style="bold",
    )
    if left:
        seconds = sum(p.estimate.total_seconds for p in dries if p.estimate is not None)
        text.append(f"; estimate {human_seconds(seconds)} in all, one spec after another")
    return text


def significance_table(families) -> Table:
    """Before training: can these seeds make any comparison significant? (stats.reach)"""
    seeds = families[0].seeds
    table = Table(
        title=f"what {seeds} seed{'s' * (seeds != 1)} can show (Wilcoxon signed-rank, Holm within each "
        "family)",
        header_style="bold",
    )
    for column in (
        "family",
        "comparisons",
        "side",
        f"smallest p with {seeds} seed{'s' * (seeds != 1)}",
        "strictest Holm α",
        "can reach significance",
        "fewest seeds that could",
    ):
        table.add_column(column, justify="left" if column in ("family", "side") else "right")
    for f in families:
        table.add_row(
            f"{f.name}: {f.question}",
            str(f.size),
            f.side,
            f"{f.floor:.2g}",
            f"{f.strictest:.3g}",
            "yes" if f.reachable else "[red]no[/red]",
            str(f.fewest_seeds),
        )
    return table


def human_seconds(seconds: float) -> str:
    """A duration the way a person says it: 850 ms, 42.0 s, 3.5 min, 2.1 h, 3.0 days."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


class ExportProgress:
    """A bar over every (target, run) of `elubench export`, gone when it ends
    (export.Progress)."""

    def __init__(self, console):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task: TaskID | None = None

    def __enter__(self):
        self._bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self._bar.__exit__(*exc)

    def start(self, total: int) -> None:
        self._task = self._bar.add_task("exporting", total=total)

    def advance(self, text: str) -> None:
        assert self._task is not None  # start() comes first
        self._bar.update(self._task, advance=1, description=text)


def export_view(outcome):
    """What `elubench export` did: per target, the runs by status, how many it wrote and how
    many it found already exported; the warnings; how to open what it wrote."""
    from rich.text import Text

    text = Text()
    for warning in outcome.warnings:
        text.append(f"warning: {warning}\n", style="yellow")
    for s in outcome.summaries:
        statuses = ", ".join(
            f"{s.statuses[k]} {k}" for k in ("ok", "diverged", "failed") if s.statuses[k]
        )
        written = f"{s.exported} exported"
        if s.replaced:
            written += f" ({s.replaced} replacing the export of a record that changed since)"
        text.append(
            f"{s.label} {s.destination}: {s.runs} runs ({statuses}): {written}, "
            f"{s.skipped} already exported\n"
        )
    text.append(f"in {human_seconds(outcome.seconds)}\n", style="dim")
    for s in outcome.summaries:
        if s.label == "TensorBoard":
            text.append(f"open: tensorboard --logdir {s.destination}\n", style="dim")
        elif s.destination.startswith(("http://", "https://")):
            text.append(f"open: {s.destination}\n", style="dim")
        else:  # a file store needs MLflow 3's opt-in to be read (docs/export.md)
            opt_in = "MLFLOW_ALLOW_FILE_STORE=true " if s.destination.startswith("file:") else ""
            text.append(
                f"open: {opt_in}mlflow ui --backend-store-uri {s.destination}\n", style="dim"
            )
    text.rstrip()
    return text


def decisions_view(outcome, folder) -> Table:
    """After `run --until-decided`: each comparison's decision, why it stopped and the seeds it
    used (execution.sequential.SequentialOutcome)."""
    decisions = outcome.decisions
    table = Table(
        title=f"sequential design ({outcome.rounds} round{'s' * (outcome.rounds != 1)} "
        "trained by this run)",
        header_style="bold",
    )
    for column in ("comparison", "decision", "stopped", "seeds", "p", "threshold"):
        table.add_column(
            column, justify="left" if column in ("comparison", "decision") else "right"
        )
    if decisions is None:
        table.caption = "no decisions yet: the first look's runs are not all recorded"
        return table
    for _, row in decisions.table().iterrows():
        table.add_row(
            str(row["comparison"]),
            str(row["decision"]),
            str(row["stopped"]),
            str(row["seeds_used"]),
            f"{row['p']:.3g}" if row["look"] else "–",
            f"{row['threshold']:.3g}" if row["look"] and row["threshold"] > 0 else "–",
        )
    table.caption = (
        f"p: the exact sign-flip p of the look it stopped at (or its last), against the "
        f"design's threshold there; `elubench compare {folder}` shows every number and why"
    )
    return table
