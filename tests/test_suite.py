"""The CPU suite of experiments (README, "Several experiments") end to end at a tiny size: one
`run` of the three suite specs, then `compare` and `report` with the summary across them."""

from __future__ import annotations

import json

import pytest
from conftest import SPECS

SUITE = [
    SPECS / "quickstart.yaml",
    SPECS / "digits-bias-shift.yaml",
    SPECS / "synthetic-templates.yaml",
]
TINY = [
    "--seeds",
    "3",
    "--set",
    "train.iterations=12",
    "--set",
    "train.epochs=null",
    "--set",
    "train.eval_every=6",
    "--set",
    "train.lr=0.01",
    "--device",
    "cpu",
]


@pytest.mark.slow
def test_the_suite_runs_compares_and_reports(cli, tmp_path):
    results = tmp_path / "results"
    code, out, err = cli("run", *SUITE, "--results", results, *TINY)
    assert code == 0, err + out
    assert {p.name for p in results.iterdir()} == {
        "quickstart",
        "digits-bias-shift",
        "synthetic-templates",
    }
    code, out, err = cli("compare", results, "--format", "json")
    assert code == 0, err
    payload = json.loads(out)
    across = payload["across"]
    assert across["experiments"] == ["digits-bias-shift", "quickstart", "synthetic-templates"]
    # digits-bias-shift trains no BN: the summary is over the four activations without BN
    assert set(across["configs"]) == {"elu", "relu", "lrelu", "srelu"}
    assert set(across["left_out"]) == {"elu+bn", "relu+bn", "lrelu+bn", "srelu+bn"}
    assert len(across["tables"]["across_ranks_tests"]) == 3 and across["friedman"]["n_blocks"] == 3
    code, out, err = cli("report", results, "--figure-format", "png")
    assert code == 0, err
    text = (results / "REPORT.md").read_text()
    assert "## Across 3 experiments" in text and (results / "figures" / "cd-diagram.png").exists()
