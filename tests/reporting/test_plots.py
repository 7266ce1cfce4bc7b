"""The report's figures: each writes a real PNG, says what it shows, and draws the right numbers."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from elubench.core.errors import PlotError
from elubench.core.units import AUTOENCODER
from elubench.reporting import curves, figures, plots

CONFIGS = ["elu", "elu+bn", "relu", "relu+bn"]
SEEDS = [0, 1, 2]
ITERATIONS = [0, 10, 20, 30]
LAYERS = ["s1_conv1", "s2_conv2", "s3_fc3"]


def _run_id(config, seed):
    return f"{config}-s{seed}"


def make_results(task="classification", diverged=("relu+bn", 2)):
    """Tables shaped like `load_results`' output; one run diverged at iteration 20."""
    rng = np.random.default_rng(0)
    runs, metrics, activations = [], [], []
    for c, config in enumerate(CONFIGS):
        for seed in SEEDS:
            bad = (config, seed) == diverged
            run_id = _run_id(config, seed)
            who = {
                "run_id": run_id,
                "config": config,
                "activation": config.split("+")[0],
                "batchnorm": config.endswith("+bn"),
                "init": "he",
                "seed": seed,
            }
            for iteration in ITERATIONS:
                if bad and iteration > 20:
                    break
                error = 0.9 / (1 + iteration) + 0.01 * c + 0.005 * seed
                loss = (
                    None
                    if iteration == 0
                    else (float("nan") if bad and iteration == 20 else 2.0 / (iteration / 10) ** 3)
                )
                metrics.append(
                    {
                        **who,
                        "iteration": iteration,
                        "test_error": error,
                        "train_loss": loss,
                        "lr": 0.05,
                        "seconds": 1.0,
                    }
                )
                for depth, layer in enumerate(LAYERS):
                    activations.append(
                        {
                            **who,
                            "iteration": iteration,
                            "layer": layer,
                            "mean": rng.normal(),
                            "median": depth * 0.1 + rng.normal(0, 0.05),
                        }
                    )
            runs.append(
                {
                    **who,
                    "status": "diverged" if bad else "ok",
                    "task": task,
                    "test_errors": pd.NA if bad else 10 + c + seed,
                    "test_size": 445,
                    "test_error": np.nan if bad else (10 + c + seed) / 445,
                    "train_loss": np.nan if bad else 0.1,
                }
            )
    runs = pd.DataFrame(runs).astype({"test_errors": "Int64"})
    return SimpleNamespace(
        runs=runs, metrics=pd.DataFrame(metrics), activations=pd.DataFrame(activations)
    )


def make_comparisons():
    return pd.DataFrame(
        {
            "a": ["elu", "elu+bn", "relu+bn"],
            "b": "relu",
            "mean_diff_pp": [-0.45, -0.2, 0.3],
            "ci_low": [-0.8, -0.9, np.nan],
            "ci_high": [-0.1, 0.5, np.nan],
            "verdict": ["better", "no evidence", "no evidence"],
            "p_holm": [0.01, 0.6, np.nan],
        }
    )


def assert_png(figure, name):
    assert figure.path.name == name and figure.path.exists()
    image = matplotlib.image.imread(figure.path)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 500
    assert image.reshape(-1, image.shape[2]).std(axis=0).max() > 0.01  # not one flat colour
    assert figure.title and figure.caption


@pytest.fixture
def captured(monkeypatch):
    """The matplotlib figure of each call, kept before it is saved (to read the drawn data)."""
    drawn = []
    save = figures.save

    def keep(fig, *args):
        drawn.append(fig)
        return save(fig, *args)

    for module in (curves, plots):  # each looks `save` up in its own namespace
        monkeypatch.setattr(module, "save", keep)
    return drawn


def test_seed_summary_is_the_mean_over_seeds_per_iteration():
    metrics = make_results().metrics
    summary = curves.seed_summary(metrics, "train_loss")
    assert 0 not in set(summary["iteration"])  # the missing loss at iteration 0 is left out
    row = summary[(summary["config"] == "elu") & (summary["iteration"] == 10)].iloc[0]
    assert row["mean"] == pytest.approx(2.0) and row["n"] == 3 and row["std"] == pytest.approx(0)
    # the diverged run's NaN loss at iteration 20 is left out, not averaged in
    assert (
        summary[(summary["config"] == "relu+bn") & (summary["iteration"] == 20)].iloc[0]["n"] == 2
    )


def test_error_curves_draw_the_mean_over_ok_seeds(tmp_path, captured):
    results = make_results()
    figure = curves.error_curves(results.metrics, tmp_path, runs=results.runs)
    assert_png(figure, "error_curves.png")
    assert "n = 2–3 seeds" in figure.caption and "±1 standard deviation" in figure.caption
    assert "relu+bn seed 2 (diverged)" in figure.caption
    lines = {line.get_label(): line for line in captured[0].axes[0].get_lines()}
    assert set(lines) == set(CONFIGS)
    expected = [
        np.mean([0.9 / (1 + i) + 0.01 * 2 + 0.005 * s for s in SEEDS]) * 100 for i in ITERATIONS
    ]
    np.testing.assert_allclose(lines["relu"].get_ydata(), expected)
    assert len(lines["relu+bn"].get_ydata()) == len(
        ITERATIONS
    )  # the diverged seed's curve is not drawn
    assert lines["relu+bn"].get_linestyle() == "--" and lines["relu"].get_linestyle() == "-"
    assert lines["relu"].get_color() == lines["relu+bn"].get_color() != lines["elu"].get_color()


def test_loss_curves_tolerate_missing_loss_and_use_log_axis(tmp_path, captured):
    results = make_results()
    figure = curves.loss_curves(results.metrics, tmp_path, runs=results.runs)
    assert_png(figure, "loss_curves.png")
    assert "n = 2–3 seeds" in figure.caption and "log y axis" in figure.caption
    ax = captured[0].axes[0]
    assert ax.get_yscale() == "log"  # the loss falls from 2 to 0.07
    assert all(np.isfinite(line.get_ydata()).all() for line in ax.get_lines())


def test_autoencoder_task_plots_mse(tmp_path, captured):
    results = make_results(task="autoencoder")
    figure = curves.error_curves(results.metrics, tmp_path, AUTOENCODER, runs=results.runs)
    assert_png(figure, "error_curves.png")
    assert "MSE × 100" in figure.caption  # the tables' unit (core.units), not percent
    line = captured[0].axes[0].get_lines()[0]
    stored = results.metrics[results.metrics["config"] == line.get_label()].groupby("iteration")[
        "test_error"
    ]
    np.testing.assert_allclose(line.get_ydata(), stored.mean().to_numpy() * 100)
    paired = plots.paired_seeds(results.runs, tmp_path, AUTOENCODER)
    assert "MSE" in paired.caption and "n = 2–3 seeds" in paired.caption


def test_bias_shift_one_panel_per_config_one_line_per_layer(tmp_path, captured):
    results = make_results()
    figure = curves.bias_shift(results.activations, tmp_path, runs=results.runs)
    assert_png(figure, "bias_shift.png")
    assert "3 hidden layers" in figure.caption and "n = 2–3 seeds" in figure.caption
    panels = {ax.get_title(): ax for ax in captured[0].axes if ax.get_title()}
    assert set(panels) == set(CONFIGS)
    lines = panels["elu"].get_lines()
    assert len(lines) == len(LAYERS) + 1  # the layers and the zero line
    acts = results.activations
    first = acts[(acts["config"] == "elu") & (acts["layer"] == "s1_conv1")]
    np.testing.assert_allclose(lines[0].get_ydata(), first.groupby("iteration")["median"].mean())
    assert lines[0].get_color() != lines[2].get_color()  # coloured by depth


def test_paired_seeds_breaks_the_line_of_a_diverged_run(tmp_path, captured):
    results = make_results()
    figure = plots.paired_seeds(results.runs, tmp_path)
    assert_png(figure, "paired_seeds.png")
    assert "n = 2–3 seeds" in figure.caption and "diverged" in figure.caption
    ax = captured[0].axes[0]
    order = [t.get_text().split("\n")[0] for t in ax.get_xticklabels()]
    seed_lines = [line for line in ax.get_lines() if line.get_label().startswith("_")]
    assert len(seed_lines) == len(SEEDS)
    seed2 = seed_lines[2].get_ydata()
    assert np.isnan(seed2[order.index("relu+bn")])
    assert seed2[order.index("relu")] == pytest.approx((10 + 2 + 2) / 445 * 100)
    assert "(1 diverged)" in ax.get_xticklabels()[order.index("relu+bn")].get_text()


def test_forest_sorts_best_on_top_and_names_untestable_rows(tmp_path, captured):
    figure = plots.forest(make_comparisons(), tmp_path, "relu", n_seeds=3)
    assert_png(figure, "forest.png")
    assert (
        "n = 3 paired seeds" in figure.caption
        and "95 %" in figure.caption
        and "relu" in figure.title
    )
    labels = [t.get_text() for t in captured[0].axes[0].get_yticklabels()]
    assert labels[-1] == "elu vs relu" and labels[0] == "relu+bn vs relu"
    table = pd.concat(
        [
            make_comparisons().assign(n_pairs=3),
            pd.DataFrame(
                {
                    "a": ["relu+bn"],
                    "b": ["elu"],
                    "mean_diff_pp": [np.nan],
                    "verdict": ["not testable"],
                    "n_pairs": [1],
                }
            ),
        ]
    )
    figure = plots.forest(SimpleNamespace(table=table), tmp_path)  # stats' result object works too
    assert "Not testable (too few paired seeds): relu+bn vs elu." in figure.caption
    assert "n = 3 paired seeds" in figure.caption  # counted over the drawn rows only
    assert len(captured[1].axes[0].get_yticklabels()) == 3


def test_all_figures_makes_what_has_data(tmp_path):
    results = make_results()
    names = [f.path.name for f in plots.all_figures(results, make_comparisons(), tmp_path, "relu")]
    assert names == [
        "error_curves.png",
        "loss_curves.png",
        "bias_shift.png",
        "paired_seeds.png",
        "forest.png",
    ]
    bare = SimpleNamespace(
        runs=results.runs,
        metrics=results.metrics.iloc[0:0],
        activations=results.activations.iloc[0:0],
    )
    names = [f.path.name for f in plots.all_figures(bare, None, tmp_path / "bare")]
    assert names == ["paired_seeds.png"]
    single = results.runs[results.runs["config"] == "elu"]
    one = SimpleNamespace(runs=single, metrics=None, activations=None)
    assert [f.path.name for f in plots.all_figures(one, make_comparisons(), tmp_path / "one")] == [
        "paired_seeds.png"
    ]
    failed = results.runs.assign(status="failed")
    assert (
        plots.all_figures(
            SimpleNamespace(runs=failed, metrics=results.metrics, activations=results.activations),
            None,
            tmp_path,
        )
        == []
    )


def test_colours_are_fixed_per_activation():
    assert (
        figures.activation_color("relu")
        == figures.activation_color("relu")
        != figures.activation_color("elu")
    )
    assert figures.activation_color("lrelu(0.1)") == figures.activation_color("lrelu")
    assert figures.activation_color("my_act") == figures.activation_color("my_act")
    from elubench.activations.registry import REGISTRY

    colours = [figures.activation_color(name) for name in REGISTRY]
    assert len(set(colours)) == len(colours), "two registered activations share a colour"
    assert colours[:2] == ["#1f77b4", "#d62728"]  # elu blue, relu red, in every report


def test_figures_read_what_a_configuration_is_from_columns_not_its_label(tmp_path, captured):
    """A label that says nothing (`A`, `B`) is still drawn as what its columns say it is."""
    results = make_results()
    names = {"elu": "A", "elu+bn": "B", "relu": "C", "relu+bn": "D"}
    for frame in (results.metrics, results.runs):
        frame["config"] = frame["config"].map(names)
    curves.error_curves(results.metrics, tmp_path, runs=results.runs)
    lines = {line.get_label(): line for line in captured[0].axes[0].get_lines()}
    assert (
        lines["A"].get_color() == figures.activation_color("elu")
        and lines["A"].get_linestyle() == "-"
    )
    assert (
        lines["D"].get_color() == figures.activation_color("relu")
        and lines["D"].get_linestyle() == "--"
    )


def test_direct_call_without_data_raises_a_clear_error(tmp_path):
    results = make_results()
    with pytest.raises(PlotError, match="no data"):
        curves.bias_shift(results.activations.iloc[0:0], tmp_path)


def test_figures_as_vector_files_beside_the_png(tmp_path):
    assert figures.figure_formats(["pdf"]) == (
        "png",
        "pdf",
    )  # the reports show the PNG: always written
    assert figures.figure_formats([" SVG", "png", "pdf", "svg"]) == ("png", "pdf", "svg")
    with pytest.raises(PlotError, match="unknown figure format 'eps'"):
        figures.figure_formats(["png", "eps"])
    figure = plots.forest(make_comparisons(), tmp_path, "relu", formats=("pdf", "svg"))
    assert [p.name for p in figure.files] == ["forest.png", "forest.pdf", "forest.svg"]
    assert figure.path == figure.files[0]
    assert (tmp_path / "forest.pdf").read_bytes().startswith(b"%PDF")
    assert b"/FontFile2" in (tmp_path / "forest.pdf").read_bytes()  # TrueType, not Type 3
    again = plots.forest(make_comparisons(), tmp_path / "again", "relu", formats=("pdf", "svg"))
    assert [p.read_bytes() for p in again.files] == [p.read_bytes() for p in figure.files]
    assert [p.name for p in plots.forest(make_comparisons(), tmp_path / "png", "relu").files] == [
        "forest.png"
    ]
