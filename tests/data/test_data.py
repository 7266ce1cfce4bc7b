"""elubench.data: splits, preprocessing, device batching and augmentation, dataset files."""

from __future__ import annotations

import json
import pickle
import struct
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from elubench.core import paths
from elubench.core.errors import DataError
from elubench.data import preprocess as preprocessing
from elubench.data.augment import crop_flip
from elubench.data.load import load_data
from elubench.data.sources import digits_raw, synthetic_images
from elubench.spec.data_section import Data, Synthetic

SMALL_SYNTHETIC = {"shape": (3, 12, 10), "classes": 4, "train_size": 120, "test_size": 40}


def load(tmp_path, **fields):
    """load_data on CPU with a private cache directory."""
    return load_data(Data(**fields), cache_dir=tmp_path / "cache")


def nearest_mean_accuracy(train_x, train_y, test_x, test_y, classes):
    means = torch.stack([train_x[train_y == k].flatten(1).mean(0) for k in range(classes)])
    return (torch.cdist(test_x.flatten(1), means).argmin(1) == test_y).float().mean().item()


# --- digits and synthetic -------------------------------------------------------------------


def test_digits_split_is_fixed_stratified_every_fourth():
    raw = digits_raw()
    assert (len(raw.train_y), len(raw.test_y)) == (1352, 445)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    for label in range(10):
        members = np.flatnonzero(bunch.target == label)
        expected_test = bunch.images[members[3::4]]
        got = raw.test_x[raw.test_y == label].squeeze(1).numpy()
        assert np.array_equal(got, expected_test)  # the 4th, 8th, ... of the class, in order
        assert int((raw.train_y == label).sum()) == len(members) - len(members[3::4])
    assert raw.train_x.max() == 16 and raw.scale == 16


def test_digits_loads_with_documented_info(tmp_path):
    data = load(tmp_path, dataset="digits", preprocess="none")
    assert (data.train_size, data.test_size, data.classes) == (1352, 445, 10)
    assert data.image_shape == data.input_shape == (1, 8, 8)
    assert "every 4th" in data.info["split"]
    assert json.loads(json.dumps(data.info))["train_size"] == 1352
    assert float(data.train_x.min()) >= 0.0 and float(data.train_x.max()) == 1.0


def test_synthetic_is_seeded_learnable_and_not_trivial():
    cfg = Synthetic(shape=(3, 16, 16), classes=10, train_size=600, test_size=300, noise=1.0, seed=3)
    raw = synthetic_images(cfg)
    again = synthetic_images(cfg)
    other = synthetic_images(cfg.model_copy(update={"seed": 4}))
    assert torch.equal(raw.train_x, again.train_x) and torch.equal(raw.test_y, again.test_y)
    assert not torch.allclose(raw.train_x, other.train_x)
    accuracy = nearest_mean_accuracy(raw.train_x, raw.train_y, raw.test_x, raw.test_y, 10)
    assert 0.2 < accuracy < 0.95  # well above chance (0.1), not solved by a linear template match
    noisier = synthetic_images(cfg.model_copy(update={"noise": 3.0}))
    assert (
        nearest_mean_accuracy(noisier.train_x, noisier.train_y, noisier.test_x, noisier.test_y, 10)
        < accuracy
    )
    assert raw.train_x.shape == (600, 3, 16, 16) and raw.train_y.dtype == torch.int64
    assert torch.bincount(raw.train_y, minlength=10).min() >= 50  # every class present


def test_limits_keep_the_first_images(tmp_path):
    full = load(tmp_path, dataset="digits", preprocess="none")
    cut = load(tmp_path, dataset="digits", preprocess="none", train_limit=100, test_limit=30)
    assert (cut.train_size, cut.test_size) == (100, 30)
    assert torch.equal(cut.train_x, full.train_x[:100])
    assert torch.equal(cut.test_y, full.test_y[:30])


# --- preprocessing ----------------------------------------------------------------------------


def test_standardize_fits_on_train_and_applies_to_test(tmp_path):
    data = load(tmp_path, dataset="synthetic", synthetic=SMALL_SYNTHETIC)
    raw = synthetic_images(Synthetic(**SMALL_SYNTHETIC))
    x = data.train_x
    assert torch.allclose(x.mean((0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(x.std((0, 2, 3), correction=0), torch.ones(3), atol=1e-4)
    mean = raw.train_x.mean((0, 2, 3), keepdim=True)
    std = raw.train_x.std((0, 2, 3), keepdim=True, correction=0)
    assert torch.allclose(data.test_x, (raw.test_x - mean) / std, atol=1e-4)


def test_gcn_zca_whitens_the_training_set(tmp_path):
    shape = (1, 4, 4)
    data = load(
        tmp_path,
        dataset="synthetic",
        preprocess="gcn-zca",
        zca_bias=1e-6,
        synthetic={"shape": shape, "classes": 3, "train_size": 400, "test_size": 10},
    )
    flat = data.train_x.flatten(1).double()
    flat = flat - flat.mean(0)
    cov = flat.T @ flat / len(flat)
    dim = flat.shape[1]
    # GCN removes each image's mean, so the constant direction has variance 0; all others 1.
    expected = torch.eye(dim, dtype=torch.float64) - 1.0 / dim
    assert torch.allclose(cov, expected, atol=2e-3)


def test_gcn_matches_pylearn2_formula():
    x = torch.rand(5, 3, 4, 4)
    out = preprocessing.gcn(x, 55.0).flatten(1)
    assert torch.allclose(out.mean(1), torch.zeros(5), atol=1e-5)
    assert torch.allclose(out.norm(dim=1), torch.full((5,), 55.0), rtol=1e-5)
    flat_image = preprocessing.gcn(torch.full((1, 1, 2, 2), 0.7), 55.0)
    assert torch.equal(flat_image, torch.zeros_like(flat_image))  # no division by ~0


def test_zca_fit_is_cached_keyed_and_survives_corruption(tmp_path, monkeypatch):
    fits = []
    real_fit = preprocessing.fit_zca  # patched where cached_zca looks it up
    monkeypatch.setattr(preprocessing, "fit_zca", lambda *a: fits.append(1) or real_fit(*a))
    fields = {"dataset": "synthetic", "preprocess": "gcn-zca", "synthetic": SMALL_SYNTHETIC}
    first = load(tmp_path, **fields)
    second = load(tmp_path, **fields)
    assert len(fits) == 1
    assert torch.equal(first.train_x, second.train_x) and torch.equal(first.test_x, second.test_x)
    files = list((tmp_path / "cache").glob("zca-*.npz"))
    assert len(files) == 1 and first.info["preprocessing"]["cache_key"] in files[0].name
    assert not list((tmp_path / "cache").glob("*.tmp"))

    changed = load(tmp_path, **fields, zca_bias=0.01)
    assert (
        len(fits) == 2
        and changed.info["preprocessing"]["cache_key"] != first.info["preprocessing"]["cache_key"]
    )
    limited = load(tmp_path, **fields, train_limit=100)
    assert len(fits) == 3 and len(list((tmp_path / "cache").glob("zca-*.npz"))) == 3
    assert limited.train_size == 100

    files[0].write_bytes(b"not a zip file")
    again = load(tmp_path, **fields)
    assert len(fits) == 4 and torch.equal(again.train_x, first.train_x)


# --- batches on the device ------------------------------------------------------------------


def augmented(tmp_path, **augment):
    return load(tmp_path, dataset="digits", preprocess="none", augment=augment)


def test_epoch_batches_shapes_dtypes_and_counts(tmp_path):
    data = augmented(tmp_path, pad=2, crop=6, hflip=True)
    assert data.input_shape == (1, 6, 6) and data.steps_per_epoch(100) == 13
    batches = list(data.epoch_batches(0, 0, 100))
    assert len(batches) == 13
    for x, y in batches:
        assert x.shape == (100, 1, 6, 6) and x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.is_contiguous(memory_format=torch.channels_last)
    labels = torch.cat([y for _, y in batches])
    order = data.epoch_draws(0, 0)[0][:1300]
    assert torch.equal(labels, data.train_y[order]) and len(set(order.tolist())) == 1300
    whole = list(data.epoch_batches(0, 0, 5000))
    assert data.steps_per_epoch(5000) == 1 and len(whole) == 1 and len(whole[0][1]) == 1352


def test_epoch_batches_depend_only_on_seed_and_epoch(tmp_path):
    data = augmented(tmp_path, pad=2, crop=8, hflip=True)

    def epoch(e, seed):
        return torch.cat([x for x, _ in data.epoch_batches(e, seed, 64)])

    base = epoch(3, 7)
    assert torch.equal(base, epoch(3, 7))
    assert torch.equal(
        base,
        torch.cat(
            [x for x, _ in augmented(tmp_path, pad=2, crop=8, hflip=True).epoch_batches(3, 7, 64)]
        ),
    )  # a fresh load: a resumed run
    assert not torch.equal(base, epoch(4, 7))
    assert not torch.equal(base, epoch(3, 8))


def reference_batch(images, index, top, left, flip, pad, crop):
    """The slow way: pad one image at a time, slice it, mirror it."""
    out = []
    for i, t, left_, f in zip(index.tolist(), top.tolist(), left.tolist(), flip.tolist()):
        padded = F.pad(images[i], (pad, pad, pad, pad))
        patch = padded[:, t : t + crop, left_ : left_ + crop]
        out.append(patch.flip(-1) if f else patch)
    return torch.stack(out)


def test_crop_and_flip_match_a_per_image_reference(tmp_path):
    pad, crop = 3, 7
    data = augmented(tmp_path, pad=pad, crop=crop, hflip=True)
    images = digits_raw().train_x / 16
    order, top, left, flip = data.epoch_draws(2, 5)
    assert top.max() == left.max() == 8 + 2 * pad - crop and top.min() == 0
    assert 0 < flip.sum() < len(flip)
    batches = data.epoch_batches(2, 5, 50)
    for step in range(3):
        x, y = next(batches)
        part = slice(50 * step, 50 * step + 50)
        expected = reference_batch(
            images, order[part], top[part], left[part], flip[part], pad, crop
        )
        assert torch.equal(x, expected)


def test_crop_flip_handles_non_square_images():
    images = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).view(2, 3, 5, 7)
    out = crop_flip(
        images.contiguous(memory_format=torch.channels_last),
        torch.tensor([1, 0]),
        torch.tensor([1, 0]),
        torch.tensor([2, 0]),
        torch.tensor([True, False]),
        (4, 5),
    )
    assert torch.equal(out[0], images[1, :, 1:5, 2:7].flip(-1))
    assert torch.equal(out[1], images[0, :, 0:4, 0:5])


def test_no_augmentation_when_augment_is_off(tmp_path):
    data = augmented(tmp_path)
    images = digits_raw().train_x / 16
    order = data.epoch_draws(0, 1)[0]
    x = torch.cat([x for x, _ in data.epoch_batches(0, 1, 64)])
    assert torch.equal(x, images[order[: len(x)]])


def test_test_batches_are_centre_crops_of_the_whole_set(tmp_path):
    images = digits_raw().test_x / 16
    same = augmented(tmp_path, pad=2, crop=8, hflip=True)
    batches = list(same.test_batches(100))
    assert [len(y) for _, y in batches] == [100] * 4 + [45]
    assert torch.equal(torch.cat([x for x, _ in batches]), images)
    smaller = augmented(tmp_path, crop=6)
    cropped = torch.cat([x for x, _ in smaller.test_batches(1000)])
    assert torch.equal(cropped, images[:, :, 1:7, 1:7])
    larger = augmented(tmp_path, pad=2, crop=10)
    x = next(larger.test_batches(1000))[0]
    assert torch.equal(x[:, :, 1:9, 1:9], images) and x[:, :, 0].abs().sum() == 0


def test_probe_is_fixed_unaugmented_and_centre_cropped(tmp_path):
    data = augmented(tmp_path, pad=2, crop=6, hflip=True)
    images = digits_raw().train_x / 16
    probe = data.probe(20)
    assert torch.equal(probe, images[:20, :, 1:7, 1:7])
    list(data.epoch_batches(0, 0, 64))
    assert torch.equal(data.probe(20), probe)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batches_match_cpu_without_host_sync(tmp_path):
    fields = {
        "dataset": "digits",
        "preprocess": "standardize",
        "augment": {"pad": 2, "crop": 8, "hflip": True},
    }
    cpu = load_data(Data(**fields), cache_dir=tmp_path)
    gpu = load_data(Data(**fields), device="cuda", cache_dir=tmp_path)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        batches = list(gpu.epoch_batches(1, 2, 64))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    expected = list(cpu.epoch_batches(1, 2, 64))
    assert all(
        torch.allclose(x.cpu(), ex, atol=1e-6) and torch.equal(y.cpu(), ey)
        for (x, y), (ex, ey) in zip(batches, expected)
    )


# --- torchvision datasets from files --------------------------------------------------------


def write_idx(path, array: np.ndarray):
    """torchvision's raw MNIST format: magic (0, 0, 8 = uint8, ndim), big-endian sizes, bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fake_mnist(tmp_path):
    rng = np.random.default_rng(0)
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    arrays = {
        "train": (rng.integers(0, 256, (50, 28, 28)), rng.integers(0, 10, 50)),
        "t10k": (rng.integers(0, 256, (20, 28, 28)), rng.integers(0, 10, 20)),
    }
    for prefix, (images, labels) in arrays.items():
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return tmp_path / "data", arrays


def test_mnist_loads_from_raw_files(fake_mnist, tmp_path):
    root, arrays = fake_mnist
    data = load_data(
        Data(dataset="mnist", preprocess="none", test_limit=15),
        data_dir=root,
        cache_dir=tmp_path / "cache",
    )
    assert (data.train_size, data.test_size, data.image_shape) == (50, 15, (1, 28, 28))
    images, labels = arrays["train"]
    assert torch.allclose(data.train_x[:, 0], torch.from_numpy(images / 255).float())
    assert torch.equal(data.train_y, torch.from_numpy(labels).long())
    assert torch.equal(data.test_y, torch.from_numpy(arrays["t10k"][1][:15]).long())


def test_missing_dataset_names_directory_and_download_flag(tmp_path, monkeypatch):
    empty = tmp_path / "nothing-here"
    with pytest.raises(DataError) as caught:
        load_data(Data(dataset="mnist"), data_dir=empty, cache_dir=tmp_path)
    assert str(empty) in str(caught.value) and "--download" in str(caught.value)
    monkeypatch.setenv("ELUBENCH_DATA_DIR", str(tmp_path / "env-dir"))
    with pytest.raises(DataError, match="env-dir"):
        load_data(Data(dataset="cifar10"), cache_dir=tmp_path)
    monkeypatch.delenv("ELUBENCH_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.default_data_dir() == tmp_path / "xdg" / "elubench" / "data"
    assert paths.default_cache_dir() == tmp_path / "xdg" / "elubench" / "cache"


def test_download_is_passed_through_and_failures_become_data_errors(tmp_path, monkeypatch):
    import torchvision.datasets

    calls = []

    class Offline:
        url = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

        def __init__(self, root, train, download):
            calls.append((root, train, download))
            raise URLError("no network")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", Offline)
    with pytest.raises(DataError) as caught:
        load_data(Data(dataset="cifar10"), data_dir=tmp_path, download=True, cache_dir=tmp_path)
    assert calls == [(str(tmp_path), True, True)]
    message = str(caught.value)
    assert "download" in message and "www.cs.toronto.edu" in message and str(tmp_path) in message

    class Broken(Offline):
        mirrors = ["https://ossci-datasets.s3.amazonaws.com/mnist/"]
        url = None

        def __init__(self, root, train, download):
            raise OSError("disk full")

    monkeypatch.setattr(torchvision.datasets, "MNIST", Broken)
    with pytest.raises(DataError, match="ossci-datasets.s3.amazonaws.com"):
        load_data(Data(dataset="mnist"), data_dir=tmp_path, download=True, cache_dir=tmp_path)


def write_pickle(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj))


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_loads_from_pickled_batches(name, tmp_path, monkeypatch):
    import torchvision.datasets.cifar

    monkeypatch.setattr(
        torchvision.datasets.cifar,
        "check_integrity",
        lambda path, md5=None: __import__("os").path.isfile(path),
    )
    rng = np.random.default_rng(1)
    classes = 10 if name == "cifar10" else 100
    label_key = "labels" if name == "cifar10" else "fine_labels"
    folder, train_files, meta = (
        (
            "cifar-10-batches-py",
            [f"data_batch_{i}" for i in range(1, 6)],
            ("batches.meta", "label_names"),
        )
        if name == "cifar10"
        else ("cifar-100-python", ["train"], ("meta", "fine_label_names"))
    )
    batches = {}
    for file in train_files + ["test_batch" if name == "cifar10" else "test"]:
        rows = rng.integers(0, 256, (6, 3072), dtype=np.uint8)
        labels = rng.integers(0, classes, 6).tolist()
        batches[file] = (rows, labels)
        write_pickle(tmp_path / folder / file, {"data": rows, label_key: labels})
    write_pickle(tmp_path / folder / meta[0], {meta[1]: [str(k) for k in range(classes)]})
    data = load_data(
        Data(dataset=name, preprocess="none"), data_dir=tmp_path, cache_dir=tmp_path / "cache"
    )
    assert (data.train_size, data.test_size, data.classes) == (6 * len(train_files), 6, classes)
    rows, labels = batches[train_files[0]]
    # a row is 1024 red, 1024 green, 1024 blue values, each 32 rows of 32
    expected = torch.from_numpy(rows.reshape(6, 3, 32, 32) / 255).float()
    assert torch.allclose(data.train_x[:6], expected)
    assert data.train_y[:6].tolist() == labels


# --- imagefolder ------------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(2)
    for part, count in (("train", 6), ("val", 2)):
        for label in ("cat", "dog"):
            (tmp_path / "images" / part / label).mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (14, 12, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / "images" / part / label / f"{i}.png")
    return tmp_path / "images"


def folder_data(root, tmp_path, workers=0, **fields):
    section = {"root": str(root), "resize": 10, "crop": 8, "workers": workers}
    section.update(fields.pop("imagefolder", {}))
    return load_data(
        Data(dataset="imagefolder", imagefolder=section, augment={"hflip": True}, **fields),
        cache_dir=tmp_path / "cache",
    )


def test_imagefolder_batches_are_seeded_whatever_the_workers(folder, tmp_path):
    data = folder_data(folder, tmp_path)
    assert (data.train_size, data.test_size, data.classes) == (12, 4, 2)
    batches = list(data.epoch_batches(0, 3, 5))
    assert len(batches) == data.steps_per_epoch(5) == 2
    x, y = batches[0]
    assert x.shape == (5, 3, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    again = list(folder_data(folder, tmp_path, workers=2).epoch_batches(0, 3, 5))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(batches, again))
    assert not torch.equal(x, next(data.epoch_batches(1, 3, 5))[0])
    test = list(data.test_batches(3))
    assert [len(y) for _, y in test] == [3, 1]
    assert torch.equal(data.probe(4), data.probe(4)) and data.probe(4).shape == (4, 3, 8, 8)
    stats = json.loads(json.dumps(data.info))["preprocessing"]["fit"]
    assert len(stats["mean"]) == 3 and list((tmp_path / "cache").glob("channels-*.json"))


def test_imagefolder_errors_name_the_problem(folder, tmp_path):
    import shutil

    with pytest.raises(DataError, match="imagefolder.classes is 3"):
        folder_data(folder, tmp_path, imagefolder={"classes": 3})
    with pytest.raises(DataError, match="gcn-zca"):
        folder_data(folder, tmp_path, preprocess="gcn-zca")
    shutil.rmtree(folder / "val")
    with pytest.raises(DataError) as caught:
        folder_data(folder, tmp_path)
    assert str(folder / "val") in str(caught.value)
