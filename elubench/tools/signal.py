"""The forward signal at initialization: how the spread of each layer's response changes with
depth before any training (the PReLU paper, He et al. 2015, section 2.2).

With rectifiers, a layer initialized with Var[w] = 1 / n keeps only half the variance of its
input's response: after L layers of Xavier init the response has shrunk by about 2^(-L/2), and
a 30-layer net hardly passes a signal (nor a gradient) at all. He init, Var[w] = 2 / n_l, keeps
it near constant. `forward_signal` measures it for a spec's matrix: every configuration
(activation x BN x init) and seed is built exactly as its run would start (the same paired
weights, :mod:`elubench.init`), one probe batch of training images (preprocessed as for
training, unaugmented) goes through it, and the std of every conv/FC layer's output (its
response, before BN and the activation) is recorded in forward order.

Nothing is trained and nothing is written to a results folder; `signal_figure` draws the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from elubench.activations.code import activation_for
from elubench.net.build import build_model
from elubench.net.init import linear_layers
from elubench.reporting.figures import Figure, activation_color, save, styled
from elubench.spec.matrix import RunConfig


@dataclass
class Signal:
    """Per configuration, seed and conv/FC layer (forward order): the std of its output."""

    frame: pd.DataFrame  # config, activation, batchnorm, init, seed, depth, layer, std
    probe_images: int
    source: str  # where the probe images came from


@torch.no_grad()
def layer_stds(model: nn.Module, probe: torch.Tensor) -> list[tuple[str, float]]:
    """(layer name, std of its output over the probe batch) for each conv/FC layer, in order.

    BN uses the probe's batch statistics (as in the first training step); dropout is off."""
    names = {module: name for name, module in model.named_modules()}
    stds: list[tuple[str, float]] = []

    def hook(module, inputs, output):
        stds.append((names[module], float(output.float().std())))

    model.train()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.eval()
    handles = [layer.register_forward_hook(hook) for layer in linear_layers(model)]
    try:
        model(probe)
    finally:
        for handle in handles:
            handle.remove()
    return stds


def forward_signal(spec, configs: list[RunConfig], probe: torch.Tensor, source: str) -> Signal:
    """The std of every conv/FC layer's response at initialization, per run of `configs`."""
    rows = []
    for cfg in configs:
        model = build_model(
            spec, activation_for(cfg, spec), cfg.batchnorm, seed=cfg.seed, init=cfg.init
        )
        for depth, (layer, std) in enumerate(layer_stds(model, probe), start=1):
            rows.append(
                {
                    "config": cfg.config,
                    "activation": cfg.activation,
                    "batchnorm": cfg.batchnorm,
                    "init": cfg.init,
                    "seed": cfg.seed,
                    "depth": depth,
                    "layer": layer.removeprefix("body."),
                    "std": std,
                }
            )
    return Signal(pd.DataFrame(rows), len(probe), source)


def measure(
    spec, configs: list[RunConfig], *, data_dir: Path | None, download: bool, probe_size: int
) -> Signal:
    """`forward_signal` on the first `probe_size` training images of the spec's dataset,
    preprocessed as for training (on the CPU: a forward pass per run is cheap). A missing or
    damaged dataset is the message `elubench data` gives."""
    from elubench.data.catalog import require
    from elubench.data.load import load_data

    require(spec.data, data_dir, download)
    data = load_data(spec.data, device="cpu", data_dir=data_dir, download=download)
    probe = data.probe(min(probe_size, data.train_size))
    return forward_signal(spec, configs, probe, f"{spec.data.dataset}, the first training images")


def by_depth(signal: Signal) -> pd.DataFrame:
    """Mean, min and max over seeds of each layer's response std, one row per config x depth."""
    return (
        signal.frame.groupby(["config", "depth", "layer"], sort=False)["std"]
        .agg(["mean", "min", "max"])
        .reset_index()
    )


def write(signal: Signal, out_dir: Path, spec_name: str) -> list[Path]:
    """signal_at_init.csv (every configuration, seed and layer) and the figure."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = out_dir / "signal_at_init.csv"
    signal.frame.to_csv(table, index=False)
    return [table, *signal_figure(signal, out_dir, spec_name).files]


def summary(signal: Signal) -> pd.DataFrame:
    """One row per configuration: the response std at the first, middle and last conv/FC layer
    (mean over seeds) and the ratio last / first."""
    table = by_depth(signal)
    rows = []
    for config, part in table.groupby("config", sort=False):
        part = part.sort_values("depth")
        first, last = part.iloc[0], part.iloc[-1]
        middle = part.iloc[len(part) // 2]
        rows.append(
            {
                "config": config,
                "layers": len(part),
                "first": first["mean"],
                "middle": middle["mean"],
                "middle_depth": int(middle["depth"]),
                "last": last["mean"],
                "last / first": last["mean"] / first["mean"],
            }
        )
    return pd.DataFrame(rows)


@styled
def signal_figure(signal: Signal, out_dir: Path, spec_name: str) -> Figure:
    """Response std against depth, one line per configuration (mean over seeds, band = range),
    on a log scale: the PReLU paper's argument drawn for the spec's own net."""
    from matplotlib.figure import Figure as MplFigure

    table = by_depth(signal)
    fig = MplFigure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.subplots()
    configs = list(dict.fromkeys(table["config"]))
    styles = ["-", "--", ":", "-."]
    activation = signal.frame.groupby("config", sort=False)["activation"].first()
    one_per_activation = activation.nunique() == len(configs)  # else colours would repeat
    for k, config in enumerate(configs):
        part = table[table["config"] == config]
        color = activation_color(activation[config]) if one_per_activation else f"C{k % 10}"
        ax.plot(
            part["depth"],
            part["mean"],
            styles[k // 10 % 4],
            color=color,
            marker="o",
            markersize=3,
            label=config,
        )
        ax.fill_between(
            part["depth"], part["min"], part["max"], color=color, alpha=0.2, linewidth=0
        )
    ax.set_yscale("log")
    ax.set_xlabel("conv/FC layer (forward order)")
    ax.set_ylabel("std of the layer's response")
    ax.legend(title="configuration", fontsize="small")
    seeds = signal.frame["seed"].nunique()
    title = f"Forward signal at initialization: {spec_name}"
    fig.suptitle(title)
    caption = (
        f"The std of each conv/FC layer's output (before BN and activation) on "
        f"{signal.probe_images} training images ({signal.source}), at initialization, "
        f"for each configuration; line = mean over {seeds} seed{'s' * (seeds != 1)} "
        "(the runs' own paired weights), band = their range; log scale. A falling line "
        "means the signal shrinks with depth (He et al. 2015, section 2.2)."
    )
    return save(fig, out_dir, "signal_at_init.png", title, caption)
