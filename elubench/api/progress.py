"""Rich progress for `elubench run`: a bar for the matrix, a bar for the current run, a line per
finished run, and a summary table at the end."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from elubench.core.units import CLASSIFICATION, Unit, unit_of, unit_of_tasks
from elubench.execution.peers import waiting_text
from elubench.execution.state import Reporter

if TYPE_CHECKING:
    from elubench.store.record import RunRecord

    # a run's record, or its JSON (a RunRecord reads as one: `record["config"]`, `record.get`)
    Record = RunRecord | dict[str, Any]


def result_line(record: Record, spec: str | None = None) -> str:
    """One line for a finished run (named by its spec's name with several specs)."""
    head = f"{record['config']} seed {record['seed']}"
    if spec is not None:
        head = f"{escape(spec)}: {head}"
    if record["status"] == "ok":
        unit = unit_of(record.get("task"))
        score = f"{unit.metric} {unit.shown(record['test_error'])}"
        if record.get("test_errors") is not None:
            score += f" ({record['test_errors']}/{record['test_size']})"
        speed = record.get("images_per_second")
        return f"[green]ok[/green] {head}: {score}, {record['wall_seconds']:.1f} s" + (
            f", {speed:,.0f} img/s" if speed else ""
        )
    colour = "yellow" if record["status"] == "diverged" else "red"
    return f"[{colour}]{record['status']}[/{colour}] {head}: {escape(str(record.get('reason')))}"


def summary_table(records: Sequence[Record], title: str) -> Table:
    """Mean ± std (over seeds) of the final test metric per configuration."""
    by_config: dict[str, list[Record]] = {}
    for record in records:
        by_config.setdefault(record["config"], []).append(record)
    unit = unit_of_tasks(r.get("task") for r in records) or CLASSIFICATION
    table = Table(title=title, header_style="bold")
    table.add_column("configuration")
    table.add_column("ok", justify="right")
    table.add_column("diverged / failed", justify="right")
    table.add_column(unit.value, justify="right")
    for config, rows in by_config.items():
        ok = [r for r in rows if r["status"] == "ok"]
        values = [r["test_error"] * unit.scale for r in ok]
        fmt = f"{{:.{unit.digits}f}}"
        if len(values) >= 2:
            cell = f"{fmt.format(statistics.mean(values))} ± {fmt.format(statistics.stdev(values))}"
        else:
            cell = fmt.format(values[0]) if values else "-"
        bad = (
            sum(r["status"] == "diverged" for r in rows),
            sum(r["status"] == "failed" for r in rows),
        )
        table.add_row(config, str(len(ok)), f"{bad[0]} / {bad[1]}", cell)
    return table


def summary_view(summary) -> Text:
    """After `run`: nothing when every run has a result; else what crashed, what has no
    record and why, and what to do (runner.Summary)."""
    text = Text()
    missing, failed = summary.missing, summary.failed
    if not missing and not failed:
        text.append(f"all {len(summary.asked)} runs recorded", style="green")
        return text
    if failed:
        text.append(
            f"{len(failed)} of {len(summary.asked)} runs failed (recorded with their "
            f"traceback; the next `run` tries them again from their checkpoint): "
            f"{', '.join(failed[:8])}{' …' if len(failed) > 8 else ''}\n",
            style="red",
        )
    if missing:
        text.append(
            f"{len(missing)} of {len(summary.asked)} runs have no record:\n", style="yellow"
        )
        for run_id, why in list(missing.items())[:20]:
            text.append(f"  {run_id}: {why}\n")
        if len(missing) > 20:
            text.append(f"  … and {len(missing) - 20} more\n")
        text.append("run the same command again to continue them")
    text.append(f"\nexit code {summary.exit_code}", style="dim")
    return text


def trained_by(holder) -> str:
    """Who trained a run another driver held: "trained by process 812 on this host"."""
    if holder is None:  # it had finished before this driver looked
        return "trained by another process"
    where = "this host" if holder.here else f"host {holder.host}"
    return f"trained by process {holder.pid} on {where}"


class RichReporter(Reporter):
    """One bar for the matrix and one per run in progress (several with parallel executors)."""

    def __init__(self, console: Console | None = None, unit: Unit = CLASSIFICATION):
        self.console = console or Console(highlight=False)
        self.unit = unit
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.matrix_task: TaskID | None = None
        self.run_tasks: dict[str, TaskID] = {}
        self.wait_task: TaskID | None = None  # runs another driver is training (execution.peers)

    def matrix_start(self, total, done, todo):
        self.console.print(f"{total} runs: {done} done, {todo} to train")
        if todo and self.matrix_task is not None:  # another round (run --until-decided)
            finished = next(t for t in self.progress.tasks if t.id == self.matrix_task).completed
            self.progress.update(self.matrix_task, total=finished + todo)
        elif todo:
            self.progress.start()
            self.matrix_task = self.progress.add_task("matrix", total=todo, info="")

    def run_start(self, cfg, index, todo):
        self.run_tasks[cfg.run_id] = self.progress.add_task(
            f"{cfg.config} s{cfg.seed}", total=None, info=""
        )

    def run_progress(self, cfg, event):
        task = self.run_tasks.get(cfg.run_id)
        if task is None:
            return
        if event["event"] == "start":
            self.progress.update(task, total=event["total"], completed=event["iteration"])
            return
        info = []
        if event.get("loss") is not None:
            info.append(f"loss {event['loss']:.4g}")
        if event.get("test_error") is not None:
            info.append(f"test {self.unit.shown(event['test_error'])}")
        if event.get("images_per_second"):
            info.append(f"{event['images_per_second']:,.0f} img/s")
        self.progress.update(task, completed=event["iteration"], info="  ".join(info))

    def _finish(self, cfg, line: str):
        task = self.run_tasks.pop(cfg.run_id, None)
        if task is not None:
            self.progress.remove_task(task)
        self.progress.console.print(line)
        if self.matrix_task is not None:
            self.progress.advance(self.matrix_task)

    def run_end(self, cfg, record):
        self._finish(cfg, self._line(cfg, record))

    def run_skipped(self, cfg, reason):
        self._finish(cfg, f"[dim]skipped {cfg.run_id}: {escape(reason)}[/dim]")

    def run_done_elsewhere(self, cfg, record):
        self._finish(cfg, self._line(cfg, record) + f" [dim]({trained_by(None)})[/dim]")

    def note(self, text):
        self.progress.console.print(text)

    def waiting(self, holders):
        if not holders:
            if self.wait_task is not None:
                self.progress.remove_task(self.wait_task)
                self.wait_task = None
            return
        if self.wait_task is None:
            self.progress.start()
            self.wait_task = self.progress.add_task(waiting_text(holders), total=None, info="")
        else:
            self.progress.update(self.wait_task, description=waiting_text(holders))

    def peer_run_end(self, cfg, record, holder):
        self.progress.console.print(self._line(cfg, record) + f" [dim]({trained_by(holder)})[/dim]")

    def _line(self, cfg, record) -> str:
        return result_line(record)

    def close(self):
        self.progress.stop()


class CampaignReporter(RichReporter):
    """Several specs in one `run` (campaign), one display: one bar over every run to train of
    every spec (its total corrected as each spec starts and finds where its folder stands),
    and each run's bar and line named by its spec."""

    def __init__(self, console: Console | None, experiments):
        super().__init__(console)
        self.names = [e.name for e in experiments]
        self.expected = [e.todo for e in experiments]  # runs to train, as prepared
        self.finished = [0] * len(experiments)  # runs each spec finished (or skipped)
        self.current = 0

    def experiment_start(self, index, experiment):
        self.current, self.unit = index, unit_of(experiment.spec.task)

    def experiment_stopped(self, experiment, error):
        self.progress.console.print(
            f"[red]{escape(experiment.name)}: stopped (its remaining runs "
            f"are not trained): {escape(error.render())}[/red]"
        )
        self.expected[self.current] = self.finished[self.current]
        if self.matrix_task is not None:
            self.progress.update(self.matrix_task, total=sum(self.expected))

    def matrix_start(self, total, done, todo):
        self.expected[self.current] = todo
        self.console.print(
            f"{escape(self.names[self.current])}: {total} runs: {done} done, {todo} to train"
        )
        if self.matrix_task is not None:
            self.progress.update(self.matrix_task, total=sum(self.expected))
        elif sum(self.expected):
            self.progress.start()
            self.matrix_task = self.progress.add_task(
                f"{len(self.names)} specs", total=sum(self.expected), info=""
            )

    def run_start(self, cfg, index, todo):
        self.run_tasks[cfg.run_id] = self.progress.add_task(
            f"{escape(cfg.spec_name)}: {cfg.config} s{cfg.seed}", total=None, info=""
        )

    def note(self, text):  # an executor's note ("40 runs sent to Ray"), named by its spec
        super().note(f"{escape(self.names[self.current])}: {text}")

    def _finish(self, cfg, line: str):
        self.finished[self.current] += 1
        super()._finish(cfg, line)

    def _line(self, cfg, record) -> str:
        return result_line(record, cfg.spec_name)

    def run_skipped(self, cfg, reason):
        self._finish(
            cfg, f"[dim]skipped {escape(cfg.spec_name)}/{cfg.run_id}: {escape(reason)}[/dim]"
        )


def campaign_view(outcomes, results):
    """After `run` of several specs: each spec's summary table, a line per spec saying where it
    stands, and what is missing across all of them with the campaign's exit code."""
    from rich.console import Group

    from elubench.execution.campaign import combined_summary

    items: list = []
    for o in outcomes:
        folder = o.experiment.folder(results)
        if o.records:
            items.append(
                summary_table(o.records, f"{o.experiment.name}: {len(o.records)} runs in {folder}")
            )
    status = Text()
    for o in outcomes:
        s, asked = o.summary, len(o.summary.asked)
        state = [f"{len(s.failed)} of {asked} runs failed"] * bool(s.failed) + [
            f"{len(s.missing)} of {asked} runs have no record"
        ] * bool(s.missing)
        status.append(f"{o.experiment.name}: ", style="bold")
        status.append(
            "; ".join(state) or f"all {asked} runs recorded",
            style="red" if s.failed else "yellow" if s.missing else "green",
        )
        status.append(
            f" (exit code {s.exit_code})" * bool(s.exit_code)
            + "; stopped by a mistake" * bool(o.error)
            + "\n",
            style="dim",
        )
    status.rstrip()
    return Group(*items, status, summary_view(combined_summary(outcomes)))


def interrupted_view(stop, experiments, results) -> Text:
    """Ctrl-C during a campaign: what each spec's folder holds now, and how to go on."""
    from elubench.execution.campaign import recorded

    text = Text()
    text.append(f"{stop.stopped.name}: {stop}\n", style="yellow")
    done = {id(o.experiment) for o in stop.outcomes}
    for e in experiments:
        how = "" if id(e) in done else " (stopped here)" if e is stop.stopped else " (not started)"
        text.append(
            f"{e.name}: {len(recorded(e, results))} of {len(e.configs)} runs are "
            f"recorded in {e.folder(results)}{how}\n"
        )
    text.append("run the same command to continue.")
    return text
