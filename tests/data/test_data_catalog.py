"""`elubench data` and the dataset check `elubench run` makes before training (elubench.data.catalog).

CI has no MNIST, so the files here are small fakes in torchvision's layout; the ok path patches
the expected MD5s to those of the files written. One test checks the real MD5s where real MNIST
is ($ELUBENCH_REAL_MNIST, or /work/data).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import yaml
from conftest import SPECS, tiny_spec

from elubench.core.errors import DataError
from elubench.data import catalog
from elubench.data.catalog import MISSING, OK, WRONG_MD5, WRONG_SIZE, Expected
from elubench.spec.data_section import Data

MNIST_NAMES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]
ONE_RUN = {"activations": ["relu"], "batchnorm": [False], "seeds": 1}
SERIAL = ["--executor", "serial", "--device", "cpu"]


def _idx(array: np.ndarray) -> bytes:
    """torchvision's raw MNIST format: magic (0, 0, 8 = uint8, ndim), big-endian sizes, bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def fake_mnist_files(seed: int = 0) -> dict[str, bytes]:
    """A tiny MNIST (40 train, 20 test images) as the four uncompressed IDX files."""
    rng = np.random.default_rng(seed)
    files = {}
    for prefix, n in (("train", 40), ("t10k", 20)):
        files[f"{prefix}-images-idx3-ubyte"] = _idx(rng.integers(0, 256, (n, 28, 28)))
        files[f"{prefix}-labels-idx1-ubyte"] = _idx(rng.integers(0, 10, n))
    return files


def write_mnist(root: Path, files: dict[str, bytes]) -> Path:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (raw / name).write_bytes(content)
    return raw


@pytest.fixture
def mnist(tmp_path, monkeypatch):
    """A data folder with a fake MNIST, and the catalog expecting exactly these files (their
    MD5s and sizes): (data folder, raw folder)."""
    files = fake_mnist_files()
    monkeypatch.setattr(
        catalog,
        "MNIST_FILES",
        tuple(
            Expected(name, hashlib.md5(files[name]).hexdigest(), len(files[name]))
            for name in MNIST_NAMES
        ),
    )
    root = tmp_path / "data"
    return root, write_mnist(root, files)


def _mnist_spec(tmp_path, name="tiny-mnist", file=None) -> Path:
    path = tmp_path / (file or f"{name}.yaml")
    path.write_text(
        yaml.safe_dump(
            tiny_spec(
                name=name,
                data={"dataset": "mnist", "preprocess": "none"},
                model={"stacks": ["1x8x3", "1x10x1"]},
                train={"batch_size": 8, "lr": 0.05, "iterations": 2, "eval_every": 2},
                compare=dict(ONE_RUN),
            ),
            sort_keys=False,
        )
    )
    return path


def _corrupt(raw: Path, name="train-labels-idx1-ubyte") -> tuple[str, str]:
    """Flip one byte of a file (same size): its expected and its new MD5."""
    path = raw / name
    content = bytearray(path.read_bytes())
    expected = hashlib.md5(content).hexdigest()
    content[-1] ^= 0xFF
    path.write_bytes(bytes(content))
    return expected, hashlib.md5(content).hexdigest()


def _flat(text: str) -> str:
    """Text as one line, a table's cell borders dropped (rich draws them between words)."""
    return " ".join(text.replace("│", " ").split())


def _error(err: str) -> str:
    """The one message the CLI printed (error and hint), as one line."""
    assert err.count("error:") == 1, err
    return _flat(err[err.index("error:") :])


# --- the table of expected files --------------------------------------------------------------


def _real_mnist() -> Path | None:
    for root in (os.environ.get("ELUBENCH_REAL_MNIST"), "/work/data"):
        if root and all((Path(root) / "MNIST" / "raw" / name).is_file() for name in MNIST_NAMES):
            return Path(root)
    return None


@pytest.mark.skipif(
    _real_mnist() is None, reason="no real MNIST ($ELUBENCH_REAL_MNIST or /work/data)"
)
def test_the_real_mnist_files_pass_with_the_catalogs_md5s_and_sizes():
    status = catalog.dataset_status(Data(dataset="mnist"), _real_mnist())
    assert [(f.name, f.status) for f in status.files] == [(name, OK) for name in MNIST_NAMES]
    assert status.ok and catalog.problem([status]) is None


def test_mnist_files_are_the_uncompressed_ones_torchvision_reads():
    from torchvision.datasets import MNIST

    assert [f.name for f in catalog.MNIST_FILES] == [
        os.path.splitext(url)[0] for url, _ in MNIST.resources
    ]
    assert f"{MNIST.__name__}/raw" == catalog.MNIST_FOLDER
    # torchvision's own MD5s are of the .gz downloads: none of ours may be one of them
    assert not {md5 for _, md5 in MNIST.resources} & {f.md5 for f in catalog.MNIST_FILES}


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_files_and_md5s_are_torchvisions_own(name):
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = {"cifar10": CIFAR10, "cifar100": CIFAR100}[name]
    folder, files = catalog.expected_files(name)
    assert folder == cls.base_folder
    listed = [*cls.train_list, *cls.test_list, [cls.meta["filename"], cls.meta["md5"]]]
    assert [[f.name, f.md5] for f in files] == [list(pair) for pair in listed]
    assert all(f.size is None for f in files)  # the pickles' sizes are not fixed: MD5 only


# --- the check ---------------------------------------------------------------------------------


def test_a_correct_layout_is_ready(mnist):
    root, _ = mnist
    status = catalog.dataset_status(Data(dataset="mnist"), root)
    assert status.ok and [f.status for f in status.files] == [OK] * 4
    catalog.require(Data(dataset="mnist"), root)  # no error


def test_missing_wrong_checksum_and_truncated_files_are_told_apart(mnist):
    root, raw = mnist
    expected, found = _corrupt(raw, "train-labels-idx1-ubyte")
    (raw / "t10k-images-idx3-ubyte").unlink()
    truncated = raw / "train-images-idx3-ubyte"
    truncated.write_bytes(truncated.read_bytes()[:1000])
    status = catalog.dataset_status(Data(dataset="mnist"), root)
    by_name = {f.name: f for f in status.files}
    assert {n: f.status for n, f in by_name.items()} == {
        "train-images-idx3-ubyte": WRONG_SIZE,
        "train-labels-idx1-ubyte": WRONG_MD5,
        "t10k-images-idx3-ubyte": MISSING,
        "t10k-labels-idx1-ubyte": OK,
    }
    assert by_name["train-labels-idx1-ubyte"].found_md5 == found != expected
    assert by_name["train-images-idx3-ubyte"].found_size == 1000
    assert by_name["train-images-idx3-ubyte"].found_md5 is None  # the wrong size says enough
    message = str(catalog.problem([status]))
    assert (
        str(truncated) in message
        and "1,000 bytes" in message
        and "2 more files not ready" in message
    )


def test_the_message_names_the_file_both_checksums_and_both_fixes(mnist):
    root, raw = mnist
    expected, found = _corrupt(raw)
    with pytest.raises(DataError) as caught:
        catalog.require(Data(dataset="mnist"), root)
    message = _flat(str(caught.value))
    assert f"{raw / 'train-labels-idx1-ubyte'} has MD5 {found}" in message
    assert f"expected MD5 {expected}" in message
    assert "--download" in message and f"copy the files into {raw}/" in message
    # a file that is there is never replaced by --download (nor deleted by elubench): say so
    assert f"delete {raw / 'train-labels-idx1-ubyte'}, then pass --download" in message


def test_a_missing_dataset_names_the_folder_to_fill(tmp_path):
    empty = tmp_path / "empty"
    with pytest.raises(DataError) as caught:
        catalog.require(Data(dataset="mnist"), empty)
    message = _flat(str(caught.value))
    assert f"mnist was not found in {empty}" in message
    assert f"{empty / 'MNIST' / 'raw' / 'train-images-idx3-ubyte'} is missing" in message
    assert "expected MD5 6bbc9ace898e44ae57da46a324031adb, 47,040,016 bytes" in message
    assert "3 more files not ready" in message
    assert f"pass --download (elubench fetches mnist through torchvision into {empty})" in message
    assert "delete" not in message


def test_digits_and_synthetic_need_no_files_and_no_torch():
    for name in ("digits", "synthetic"):
        status = catalog.dataset_status(Data(dataset=name), Path("/nonexistent"))
        assert status.ok and status.files == [] and status.note
    code = (
        "import sys; from elubench.data.catalog import dataset_status; from elubench.spec.data_section import Data;"
        "[dataset_status(Data(dataset=n), '/nonexistent') for n in ('mnist', 'digits', 'synthetic')];"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # only CIFAR's checksums (torchvision's) import it


# --- elubench data -----------------------------------------------------------------------------


def test_data_exits_0_and_lists_every_file_when_ready(cli, mnist, tmp_path):
    root, _ = mnist
    code, out, err = cli("data", _mnist_spec(tmp_path), "--data-dir", root)
    assert code == 0, out + err
    text = _flat(out)
    assert f"data folder {root} (--data-dir)" in text and "1 of 1 dataset ready" in text
    assert "MNIST/raw/" in text  # the folder the files go in, under the data folder
    for expected in catalog.MNIST_FILES:
        assert f"{expected.name} {expected.md5} ok" in text


def test_data_exits_2_with_the_table_then_one_message(cli, mnist, tmp_path):
    root, raw = mnist
    expected, found = _corrupt(raw)
    code, out, err = cli("data", _mnist_spec(tmp_path), "--data-dir", root)
    assert code == 2
    text = _flat(out)
    assert f"wrong checksum: found {found}" in text and "0 of 1 dataset ready" in text
    message = _error(err)
    assert (
        str(raw / "train-labels-idx1-ubyte") in message and expected in message and found in message
    )
    assert "--download" in message and f"copy the files into {raw}/" in message


def test_digits_and_synthetic_specs_need_nothing(cli, tmp_path):
    code, out, err = cli(
        "data",
        SPECS / "quickstart.yaml",
        SPECS / "synthetic-templates.yaml",
        "--data-dir",
        tmp_path / "nothing",
        "--json",
    )
    assert code == 0, out + err
    report = json.loads(out)
    assert report["ready"] and [d["dataset"] for d in report["datasets"]] == ["digits", "synthetic"]
    assert all(d["files"] == [] and d["folder"] is None for d in report["datasets"])
    assert "scikit-learn" in report["datasets"][0]["note"]


def test_several_specs_needing_one_dataset_list_it_once(cli, mnist, tmp_path):
    root, _ = mnist
    a, b = _mnist_spec(tmp_path, "a"), _mnist_spec(tmp_path, "b")
    code, out, err = cli("data", a, SPECS / "quickstart.yaml", b, a, "--data-dir", root, "--json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["data_dir"] == str(root) and report["data_dir_from"] == "--data-dir"
    assert [(d["dataset"], d["needed_by"]) for d in report["datasets"]] == [
        ("mnist", [str(a), str(b)]),
        ("digits", [str(SPECS / "quickstart.yaml")]),
    ]
    files = report["datasets"][0]["files"]
    assert [(f["name"], f["md5"], f["status"]) for f in files] == [
        (e.name, e.md5, "ok") for e in catalog.MNIST_FILES
    ]


def test_the_data_folder_follows_the_environment(cli, mnist, tmp_path, monkeypatch):
    root, _ = mnist
    monkeypatch.setenv("ELUBENCH_DATA_DIR", str(root))
    code, out, err = cli("data", _mnist_spec(tmp_path), "--json")
    assert code == 0, out + err
    assert json.loads(out)["data_dir_from"] == "$ELUBENCH_DATA_DIR"


def test_an_image_folder_without_train_and_val_is_named(cli, tmp_path):
    spec = tmp_path / "i.yaml"
    spec.write_text(
        yaml.safe_dump(
            tiny_spec(
                name="i",
                data={
                    "dataset": "imagefolder",
                    "imagefolder": {
                        "root": str(tmp_path / "no-images"),
                        "crop": 8,
                        "resize": 8,
                        "classes": 10,
                    },
                },
            )
        )
    )
    code, out, err = cli("data", spec)
    assert code == 2 and f"no folder {tmp_path / 'no-images' / 'train'}" in _error(err)


# --- --download (torchvision's download patched: this machine has no network) ----------------


def _downloader(monkeypatch, write, calls):
    """torchvision's MNIST, its download replaced by `write(root)`; it loads as the real one."""
    import torchvision.datasets
    from torchvision.datasets import MNIST as Real

    class MNIST(Real):  # the class's name is its folder: <root>/MNIST/raw
        def download(self):
            calls.append(self.root)
            if not self._check_exists():
                write(Path(self.root))

    monkeypatch.setattr(torchvision.datasets, "MNIST", MNIST)


def test_download_fetches_the_missing_files_then_checks_them(cli, mnist, tmp_path, monkeypatch):
    # `mnist`: the catalog expects the MD5s of fake_mnist_files(), which the download writes
    empty, calls = tmp_path / "fresh", []
    _downloader(monkeypatch, lambda root: write_mnist(root, fake_mnist_files()), calls)
    code, out, err = cli("data", _mnist_spec(tmp_path), "--data-dir", empty, "--download", "--json")
    assert code == 0, out + err
    report = json.loads(out)  # torchvision's progress went to stderr, not into the JSON
    assert report["datasets"][0]["downloaded"] and report["ready"]
    assert calls and all(Path(c) == empty for c in calls)
    code, out, err = cli("data", _mnist_spec(tmp_path), "--data-dir", empty)
    assert code == 0 and "(downloaded)" not in out  # ready now, nothing fetched again


def test_a_failed_download_is_one_message(cli, tmp_path, monkeypatch):
    import torchvision.datasets

    class Offline:
        mirrors = ["https://ossci-datasets.s3.amazonaws.com/mnist/"]

        def __init__(self, root, train, download):
            raise URLError("no network")

    monkeypatch.setattr(torchvision.datasets, "MNIST", Offline)
    empty = tmp_path / "fresh"
    code, out, err = cli("data", _mnist_spec(tmp_path), "--data-dir", empty, "--download")
    message = _error(err)
    assert code == 2 and "downloading mnist from ossci-datasets.s3.amazonaws.com" in message
    assert (
        "check the network" in message
        and f"copy the files into {empty / 'MNIST' / 'raw'}/" in message
    )


def test_a_wrong_download_is_named_as_such(cli, mnist, tmp_path, monkeypatch):
    _downloader(monkeypatch, lambda root: write_mnist(root, fake_mnist_files(seed=1)), [])
    code, out, err = cli(
        "data", _mnist_spec(tmp_path), "--data-dir", tmp_path / "fresh", "--download"
    )
    assert code == 2 and "just downloaded" in _error(err)


def test_download_leaves_a_damaged_file_alone_and_says_to_delete_it(
    cli, mnist, tmp_path, monkeypatch
):
    root, raw = mnist
    _corrupt(raw)
    calls = []
    _downloader(monkeypatch, lambda root: pytest.fail("nothing may be fetched"), calls)
    code, out, err = cli("data", _mnist_spec(tmp_path), "--data-dir", root, "--download")
    assert code == 2 and calls == []
    assert f"delete {raw / 'train-labels-idx1-ubyte'}, then pass --download" in _error(err)


# --- elubench run: the same check before anything trains --------------------------------------


@pytest.mark.parametrize(
    "executor", [["--executor", "serial"], ["--executor", "local", "--workers", "1"]]
)
def test_run_on_a_corrupt_dataset_stops_before_training_with_the_same_message(
    cli, mnist, tmp_path, executor
):
    root, raw = mnist
    _corrupt(raw)
    spec = _mnist_spec(tmp_path)
    _, _, data_err = cli("data", spec, "--data-dir", root)
    results = tmp_path / "results"
    code, out, err = cli(
        "run", spec, "--data-dir", root, "--results", results, "--device", "cpu", *executor
    )
    assert code == 2, out + err
    assert _error(err) == _error(data_err)
    assert not results.exists()  # nothing trained, nothing written


def test_a_later_spec_with_a_corrupt_dataset_stops_the_campaign_before_the_first(
    cli, mnist, tmp_path
):
    root, raw = mnist
    _corrupt(raw)
    first = tmp_path / "digits.yaml"
    first.write_text(yaml.safe_dump(tiny_spec(name="digits", compare=dict(ONE_RUN))))
    spec = _mnist_spec(tmp_path)
    results = tmp_path / "results"
    code, out, err = cli("run", first, spec, "--data-dir", root, "--results", results, *SERIAL)
    message = _error(err)
    assert code == 2 and str(spec) in message and "is damaged" in message
    assert not results.exists()


def test_run_download_fetches_checks_and_trains(cli, mnist, tmp_path, monkeypatch):
    empty, calls = tmp_path / "fresh", []
    _downloader(monkeypatch, lambda root: write_mnist(root, fake_mnist_files()), calls)
    results = tmp_path / "results"
    code, out, err = cli(
        "run",
        _mnist_spec(tmp_path),
        "--data-dir",
        empty,
        "--download",
        "--results",
        results,
        *SERIAL,
    )
    assert code == 0, out + err
    assert calls and catalog.dataset_status(Data(dataset="mnist"), empty).ok
    assert len(list((results / "tiny-mnist" / "runs").glob("*/run.json"))) == 1


def test_dry_run_says_how_the_dataset_stands(cli, mnist, tmp_path):
    root, raw = mnist
    _corrupt(raw)
    code, out, err = cli(
        "run",
        _mnist_spec(tmp_path),
        "--data-dir",
        root,
        "--results",
        tmp_path / "results",
        "--dry-run",
        "--device",
        "cpu",
    )
    assert code == 0, out + err
    assert f"data: mnist in {raw}: 1 wrong checksum of 4 files, not ready" in _flat(out)
    code, out, err = cli(
        "run",
        SPECS / "quickstart.yaml",
        "--results",
        tmp_path / "results",
        "--dry-run",
        "--device",
        "cpu",
        "--seeds",
        "1",
        "-a",
        "relu",
    )
    assert "data: digits, no files" in _flat(out)
