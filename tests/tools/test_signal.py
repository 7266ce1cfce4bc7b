"""The forward signal at initialization (`elubench signal`), against the PReLU paper's variance
argument and against a layer-by-layer forward pass written out by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from conftest import tiny_spec
from torch import nn

from elubench.net.build import build_model
from elubench.spec.matrix import select
from elubench.spec.schema import Spec
from elubench.tools.signal import forward_signal, layer_stds, summary

DEEP_FC = {  # ten square FC layers: fan_in = fan_out, so Xavier's Var[w] is 1 / n exactly
    "name": "deep-fc",
    "data": {
        "dataset": "synthetic",
        "preprocess": "standardize",
        "synthetic": {"shape": [1, 16, 16], "train_size": 600, "test_size": 100},
    },
    "model": {"stacks": ["1×512×FC", "10×512×FC", "1×10×FC"]},
    "train": {"batch_size": 32, "lr": 0.01, "iterations": 10, "eval_every": 10},
    "compare": {
        "activations": ["relu"],
        "batchnorm": [False],
        "init": ["he", "xavier"],
        "seeds": 2,
    },
}


def _spec(content: dict) -> Spec:
    return Spec.model_validate(content)


def _ratios(frame: pd.DataFrame, init: str) -> list[float]:
    """Per-layer std ratio between consecutive square hidden layers, mean over seeds."""
    part = frame[frame["init"] == init].groupby("depth")["std"].mean()
    return [part[d + 1] / part[d] for d in range(2, 11)]


def test_relu_variance_argument_he_keeps_xavier_halves():
    """He et al. 2015, eq. 10: with ReLU, Var[y_l] = n Var[w] Var[y_{l-1}] / 2. He's
    Var[w] = 2 / n keeps the response std; Xavier's 1 / n (square layers) scales it by
    1 / sqrt(2) a layer."""
    spec = _spec(DEEP_FC)
    probe = torch.randn(512, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    signal = forward_signal(spec, select(spec), probe, "Gaussian noise")
    he, xavier = _ratios(signal.frame, "he"), _ratios(signal.frame, "xavier")
    assert math.prod(he) ** (1 / len(he)) == pytest.approx(1.0, rel=0.05)
    assert math.prod(xavier) ** (1 / len(xavier)) == pytest.approx(2**-0.5, rel=0.05)
    assert set(signal.frame["depth"]) == set(range(1, 13))  # 12 conv/FC layers, the output too


def test_layer_stds_match_a_forward_pass_written_out():
    spec = _spec(tiny_spec(compare={"activations": ["elu"], "batchnorm": [True], "seeds": 1}))
    model = build_model(spec, "elu", True, seed=3)
    probe = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    measured = layer_stds(model, probe)
    expected, x = [], probe
    model.train()
    with torch.no_grad():
        for name, module in model.body.named_children():
            if isinstance(module, nn.Dropout):
                continue  # off for the probe
            x = module(x)
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                expected.append((f"body.{name}", float(x.std())))
    assert [n for n, _ in measured] == [n for n, _ in expected]
    assert [s for _, s in measured] == pytest.approx([s for _, s in expected], rel=1e-5)


def test_every_configuration_and_seed_is_measured_with_its_paired_weights():
    spec = _spec(tiny_spec())
    configs = select(spec)
    probe = torch.randn(32, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    frame = forward_signal(spec, configs, probe, "noise").frame
    assert len(frame) == len(configs) * 3  # three conv layers each
    assert set(frame["config"]) == {"elu", "relu", "elu+bn", "relu+bn"}
    first = frame[frame["depth"] == 1].set_index(["config", "seed"])["std"]
    # The first conv layer sees the same input and, per seed, the same weights whatever the
    # activation: its response is identical across the configurations of one seed.
    for seed in (0, 1):
        assert first.xs(seed, level="seed").nunique() == 1
    table = summary(forward_signal(spec, configs, probe, "noise"))
    assert list(table.columns[:2]) == ["config", "layers"] and (table["layers"] == 3).all()


def test_cli_writes_table_csv_and_figure(cli, write_spec, tmp_path):
    path = write_spec(tiny_spec())
    out = tmp_path / "signal"
    code, stdout, stderr = cli("signal", path, "--out", out, "--seeds", "1", "--probe", "50")
    assert code == 0, stderr
    assert "response std at initialization" in stdout and "relu+bn" in stdout
    frame = pd.read_csv(out / "signal_at_init.csv")
    assert len(frame) == 4 * 3 and set(frame["seed"]) == {0}
    assert (out / "signal_at_init.png").stat().st_size > 10_000


def test_cli_mistakes_are_one_message(cli, write_spec, tmp_path):
    path = write_spec(tiny_spec())
    code, _, stderr = cli("signal", path, "--activations", "nosuch", "--out", tmp_path)
    assert code == 2 and "nosuch" in stderr and "Traceback" not in stderr
    code, _, stderr = cli("signal", tmp_path / "missing.yaml")
    assert code == 2 and "Traceback" not in stderr
