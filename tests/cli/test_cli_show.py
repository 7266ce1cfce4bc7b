import json
import subprocess
import sys

import pytest
from conftest import SPECS, tiny_spec


def test_show_json_reports_the_paper_counts(cli):
    code, out, _ = cli("show", SPECS / "elu-cifar100-11.yaml", "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["total_params"] == 1_669_028
    assert payload["forward_flops"] > 0
    assert payload["layers"][0]["type"] == "conv + elu"
    code, out, _ = cli("show", SPECS / "elu-cifar100-18.yaml", "--json", "-a", "relu")
    assert json.loads(out)["total_params"] == 39_330_404


def test_show_bn_and_prelu_add_their_parameters(cli):
    _, plain, _ = cli("show", SPECS / "elu-cifar100-11.yaml", "--json", "-a", "relu")
    _, bn, _ = cli("show", SPECS / "elu-cifar100-11.yaml", "--json", "-a", "prelu", "--bn")
    hidden_units = 192 + 192 + 240 + 240 + 260 + 260 + 280 + 280 + 300 + 300
    hidden_biases = hidden_units  # BN removes the hidden layers' biases
    expected = json.loads(plain)["total_params"] - hidden_biases + 2 * hidden_units + hidden_units
    assert json.loads(bn)["total_params"] == expected


def test_show_table(cli):
    code, out, _ = cli("show", SPECS / "quickstart.yaml", "--width", "0.5")
    assert code == 0
    assert "quickstart" in out and "total" in out and "maxpool" in out


def test_activations_command(cli):
    code, out, _ = cli("activations")
    assert code == 0 and "srelu" in out and "max(floor, x)" in out
    code, out, _ = cli("activations", "--json")
    assert {row["name"] for row in json.loads(out)} >= {"elu", "prelu", "mish"}


@pytest.mark.parametrize(
    "args, words",
    [
        (["show", "nope.yaml"], "no such spec file"),
        (["show", SPECS / "quickstart.yaml", "-a", "swishy"], "unknown activation"),
        (["show", SPECS / "quickstart.yaml", "--set", "train.iteratons=3"], "unknown key"),
        (["show", SPECS / "quickstart.yaml", "--set", "oops"], "cannot read the override"),
        (["show", SPECS / "quickstart.yaml", "--width", "0"], "greater than 0"),
    ],
)
def test_mistakes_exit_2_with_one_message(cli, args, words):
    code, out, err = cli(*args)
    assert code == 2
    assert words in err
    assert "Traceback" not in err + out


def test_bad_spec_file_through_the_cli(cli, write_spec):
    path = write_spec(tiny_spec(model={"stacks": ["1x8x3", "1x7x1"]}))
    code, _, err = cli("show", path)
    assert code == 2 and "digits has 10 classes" in err and "spec.yaml:" in err


def test_show_imagenet_feeds_spp_the_unpooled_last_conv_map(cli):
    code, out, _ = cli("show", SPECS / "elu-imagenet-15.yaml", "--json")
    assert code == 0
    layers = json.loads(out)["layers"]
    index = next(i for i, layer in enumerate(layers) if layer["kind"] == "spp")
    assert layers[index - 1]["out_shape"] == [1024, 14, 14]
    assert layers[index]["in_shape"] == [1024, 14, 14] and layers[index]["out_shape"] == [21504]


def test_bad_bracket_string_stacks_through_the_cli(cli, write_spec):
    path = write_spec(
        "name: t\n"
        "data: {dataset: digits}\n"
        "model:\n"
        '  stacks: "[1x8x3] [1x8z3] [1x10x1]"\n'
        "train: {batch_size: 8, lr: 0.1, iterations: 5}\n"
    )
    code, out, err = cli("show", path)
    assert code == 2
    assert f"{path}:4: model.stacks: expected 'x' or '×'" in " ".join(err.split())
    assert "hint:" in err and "Traceback" not in err + out


def test_help_does_not_import_torch():
    code = (
        "import sys; from elubench.cli.app import app; from typer.testing import CliRunner;"
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output;"
        "r = CliRunner().invoke(app, ['show', '--help']); assert r.exit_code == 0;"
        "bad = [m for m in ('torch', 'torchvision', 'pandas', 'scipy') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_show_does_not_import_torch(tmp_path):
    code = (
        "import sys; from elubench.cli.app import app; from typer.testing import CliRunner;"
        f"r = CliRunner().invoke(app, ['show', r'{SPECS / 'elu-cifar100-11.yaml'}', '--json']);"
        "assert r.exit_code == 0, r.output; assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
