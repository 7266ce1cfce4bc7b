"""The command line's options and arguments, each declared once, here: the commands stay short,
and two commands that take the same option (`compare` and `report`, `run` and `signal`) share
it. Two options with one flag but another meaning (bench's --activations) are two
declarations. Pure declarations: typer only, nothing heavy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from elubench.core.limits import MAX_EXACT_PAIRS


def optional(help: str, *flags: str, **options: Any) -> Any:
    """An option whose default is not shown (none, or the spec's, as its help says)."""
    return typer.Option(*flags, help=help, show_default=False, **options)


SpecArg = Annotated[Path, typer.Argument(help="A spec YAML file (see specs/).", show_default=False)]
SpecsArg = Annotated[
    list[Path],
    typer.Argument(
        help="One or more spec YAML files (see specs/); a shell glob works (specs/mnist-*.yaml). "
        "Several train one after another, each in results/<spec name>/.",
        show_default=False,
        metavar="spec",
    ),
]
SetOpt = Annotated[
    list[str] | None,
    optional("Override a spec field: --set train.iterations=2000 (repeatable).", "--set"),
]
WidthOpt = Annotated[
    float | None,
    optional("Scale every layer's units except the output layer's (sets model.width)."),
]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")]
PrecisionOpt = Annotated[str | None, optional("fp32 or bf16 (autocast); sets train.precision.")]
CompileOpt = Annotated[bool, typer.Option("--compile", help="torch.compile the model.")]
ActivationsOpt = Annotated[
    list[str] | None,
    optional(
        "Only these activations (comma-separated or repeated); default: the spec's.",
        "--activations",
        "-a",
    ),
]

# `run` (and, where they share a name, `show` and `bench`)
BatchnormOpt = Annotated[str | None, optional("on, off or both; default: the spec's.")]
UntilDecidedOpt = Annotated[
    bool,
    typer.Option(
        "--until-decided",
        help="Train seeds in rounds until every comparison is decided, futile or at "
        "--max-seeds: a group-sequential design whose error rate is proven "
        "(docs/statistics.md); sets compare.until_decided. With --dry-run: its expected runs "
        "and power beside the fixed design's.",
    ),
]
MaxSeedsOpt = Annotated[
    int | None,
    optional(
        "With --until-decided: the most seeds a configuration trains (sets compare.max_seeds; "
        f"default 20, at most {MAX_EXACT_PAIRS}).",
        min=1,
        max=MAX_EXACT_PAIRS,
    ),
]
EffectsOpt = Annotated[
    str,
    typer.Option(
        help="With --dry-run --until-decided: the effect sizes d_z (mean over sd of the paired "
        "differences) to simulate, comma-separated."
    ),
]
SeedsOpt = Annotated[int | None, optional("Seeds 0..N-1; default: the spec's.", min=1)]
ResultsOpt = Annotated[Path, typer.Option(help="Results folder (one subfolder per spec).")]
DataDirOpt = Annotated[
    Path | None,
    optional("Where datasets live (default: $ELUBENCH_DATA_DIR or ~/.cache/elubench/data)."),
]
DownloadOpt = Annotated[bool, typer.Option(help="Download a missing dataset.")]

# `data`
DataSpecsArg = Annotated[
    list[Path],
    typer.Argument(
        help="One or more spec YAML files (see specs/); a shell glob works.",
        show_default=False,
        metavar="spec",
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print JSON instead of a table.")
]  # data, show, bench, activations
FetchOpt = Annotated[
    bool,
    typer.Option(
        "--download",
        help="Fetch datasets whose files are missing through torchvision into the data "
        "folder, then check them.",
    ),
]
ForceOpt = Annotated[
    bool,
    typer.Option(
        help="Train the selected runs again; old records move to superseded/, never deleted."
    ),
]
DryRunOpt = Annotated[
    bool,
    typer.Option(help="List the matrix (done / left) and estimate its wall time; train nothing."),
]
CheckpointOpt = Annotated[
    float, typer.Option(help="Seconds between checkpoints (taken at evaluations).")
]
ThreadsOpt = Annotated[
    int | None,
    optional(
        "CPU threads per run (sets train.threads; default the spec's, 1). Runs with different "
        "counts give different float sums: keep one count per results folder.",
        min=1,
    ),
]
NoWaitOpt = Annotated[
    bool,
    typer.Option(
        "--no-wait",
        help="Do not wait for runs another elubench process is training (a live claim): report "
        "them as having no record (exit 4) instead of waiting for their records.",
    ),
]
TakeOverOpt = Annotated[
    bool,
    typer.Option(
        help="Train runs claimed by a process on another host too (a results folder copied from a "
        "machine where nothing trains them now)."
    ),
]
NoMemoryCheckOpt = Annotated[
    bool, typer.Option(help="Train even when the estimate says a run will not fit in memory.")
]
DeterministicOpt = Annotated[
    bool,
    typer.Option(
        help="GPU: deterministic algorithms (cuDNN, atomics), slower; recorded in every run."
    ),
]
# `compare` and `report`
ResultsArg = Annotated[Path, typer.Argument(help="A results folder (default results/).")]


SpecNameOpt = Annotated[
    list[str] | None,
    optional("Only this experiment (spec name; repeatable), when the folder holds several."),
]
AcrossOpt = Annotated[
    bool | None,
    optional(
        "The summary across experiments: by default when the folder holds two or more; --across "
        "requires it, --no-across leaves it out.",
        "--across/--no-across",
    ),
]
BaselineOpt = Annotated[
    str | None,
    optional(
        "An activation, compared with every other at the same BN setting (e.g. relu), or a "
        "configuration every other is compared with (e.g. relu+bn); default: the spec's (relu)."
    ),
]
AllPairsOpt = Annotated[
    bool, typer.Option("--all-pairs", help="Compare every pair of configurations.")
]
AlternativeOpt = Annotated[
    str | None,
    optional("two-sided, less (a has lower error) or greater; default: the spec's (two-sided)."),
]
AlphaOpt = Annotated[float | None, optional("Significance level; default: the spec's (0.05).")]
RopeOpt = Annotated[
    float | None,
    optional(
        "Region of practical equivalence of the Bayesian signed-rank test, in percentage points; "
        "default: the spec's (0.5)."
    ),
]
QValuesOpt = Annotated[
    bool, typer.Option("--q-values", help="Also report Benjamini–Hochberg q-values.")
]
TargetOpt = Annotated[
    float | None,
    optional(
        "Test error (%) whose iterations-to-reach are compared (default: the worst "
        "configuration's final mean)."
    ),
]
FormatOpt = Annotated[str, typer.Option("--format", help="rich, markdown, csv, json or latex.")]
OutOpt = Annotated[Path | None, optional("Write to this file instead of the terminal.")]
SkipBadOpt = Annotated[
    bool,
    typer.Option(
        "--skip-bad",
        help="Leave out damaged files (run.json, metrics.jsonl, spec.json), each named in a warning.",
    ),
]

# `export`
TensorBoardOpt = Annotated[
    Path | None,
    optional(
        "Write TensorBoard event files: one TensorBoard run per run, in DIR/<spec>/<run id>/ "
        "(needs pip install 'elubench\\[tensorboard]').",
        "--tensorboard",
        metavar="DIR",
    ),
]
MlflowOpt = Annotated[
    str | None,
    optional(
        "Log to an MLflow tracking store: a folder (file:./mlruns), a database "
        "(sqlite:///mlflow.db) or a server (http://host:5000); one experiment per spec, one "
        "MLflow run per run (needs pip install 'elubench\\[mlflow]').",
        "--mlflow",
        metavar="URI",
    ),
]

# `show`
ShowActivationOpt = Annotated[
    str, optional("Activation to lay out (default: the spec's first).", "--activation", "-a")
]
BnOpt = Annotated[
    bool, typer.Option("--bn/--no-bn", help="Lay out the net with batch normalization.")
]

# `report`
MarkdownOpt = Annotated[bool, typer.Option("--markdown/--no-markdown", help="Write REPORT.md.")]
HtmlOpt = Annotated[
    bool, typer.Option("--html", help="Also write REPORT.html: one file, figures inside.")
]
FigureFormatOpt = Annotated[
    str, typer.Option(help="Figure files: png (always), pdf, svg; comma-separated.")
]
ReportOutOpt = Annotated[
    Path | None, optional("Folder for the report (default: the spec's results folder).", "--out")
]

# `signal`
ProbeOpt = Annotated[int, typer.Option(help="Training images in the probe batch.", min=1)]
SignalOutOpt = Annotated[
    Path | None,
    optional("Folder for signal_at_init.csv and .png (default: results/<spec name>/).", "--out"),
]

# `bench`
BenchActivationsOpt = Annotated[
    list[str] | None,
    optional(
        "Activations whose step time to compare with relu's (comma-separated; default: the "
        "spec's).",
        "--activations",
        "-a",
    ),
]
BatchSizeOpt = Annotated[int | None, optional("Default: the spec's.", min=1)]
StepsOpt = Annotated[int, typer.Option(help="Timed steps per measurement.", min=1)]
WarmupOpt = Annotated[int, typer.Option(help="Untimed steps before measuring.", min=1)]
RepeatsOpt = Annotated[int, typer.Option(help="Interleaved measurements of each loop.", min=1)]
BenchPrecisionOpt = Annotated[
    str | None, optional("fp32 or bf16; default: the spec's.", "--precision")
]
BenchCompileOpt = Annotated[
    bool, typer.Option("--compile", help="torch.compile the engine's model.")
]
ReferenceWorkersOpt = Annotated[
    int, typer.Option(help="DataLoader workers of the reference loop.", min=0)
]
