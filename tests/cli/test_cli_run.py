"""`elubench run` and `elubench bench` through the command line."""

import json

import pytest
from conftest import SPECS

QUICK = ["--set", "train.iterations=30", "--set", "train.eval_every=10", "--device", "cpu"]


def test_dry_run_lists_the_matrix_and_estimates(cli, tmp_path):
    code, out, err = cli("run", SPECS / "quickstart.yaml", "--results", tmp_path, "--dry-run")
    assert code == 0, err
    text = " ".join(out.split())
    assert "elu+bn" in text and "srelu" in text and "estimate on cpu: 80 runs" in text
    assert not (tmp_path / "quickstart").exists()  # a dry run writes nothing


def test_dry_run_of_the_paper_net_warns_of_days(cli, tmp_path):
    code, out, err = cli(
        "run",
        SPECS / "elu-cifar100-11.yaml",
        "--results",
        tmp_path,
        "--dry-run",
        "--width",
        "0.25",
        "--seeds",
        "1",
        "-a",
        "relu",
        "--batchnorm",
        "off",
    )
    assert code == 0, err
    text = " ".join(out.split())
    assert "165,000 steps" in text and ("h " in text or "days" in text)


@pytest.mark.slow
@pytest.mark.parametrize(
    "how",
    [
        ["--executor", "local", "--workers", "2"],
        ["--parallel", "2"],
        ["--executor", "ray", "--ray-cpus", "2", "--cpus-per-run", "1"],
    ],
)
def test_parallel_executors_from_the_command_line(cli, tmp_path, how):
    code, out, err = cli(
        "run",
        SPECS / "quickstart.yaml",
        "--results",
        tmp_path,
        "--seeds",
        "1",
        "-a",
        "elu,relu",
        *QUICK,
        *how,
    )
    assert code == 0, err
    records = [json.loads(p.read_text()) for p in tmp_path.rglob("run.json")]
    assert len(records) == 4 and all(r["status"] == "ok" for r in records)


@pytest.mark.slow
def test_bench_json_has_the_contract_keys(cli):
    code, out, err = cli(
        "bench",
        SPECS / "quickstart.yaml",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--repeats",
        "3",
        "-a",
        "elu,prelu",
        "--reference-workers",
        "0",
        "--json",
        "--device",
        "cpu",
    )
    assert code == 0, err
    from test_json import strict

    result = strict(out)
    for key in (
        "reference_images_per_second",
        "elubench_images_per_second",
        "speedup",
        "flops_per_image",
        "peak_flops",
        "achieved_flops",
        "peak_fraction",
        "activation_time_ratio",
        "device",
        "threads",
    ):
        assert key in result
    assert result["reference"]["repeats"] == 3
    assert set(result["activation_time_ratio"]) == {"relu", "elu", "prelu"}
    assert result["activation_time_ratio"]["relu"] == 1.0
    # torch's counter, forward + backward: 3x the forward FLOPs `show` reports, less the input
    # gradient of the first layer, which nobody needs
    forward = 631_808
    assert 2 * forward < result["flops_per_image"] <= 3 * forward
    assert result["achieved_flops"] == pytest.approx(
        result["flops_per_image"] * result["elubench_images_per_second"]
    )
