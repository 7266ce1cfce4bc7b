"""Speed never changes the science: elubench's engine (device-resident data, batched crop and
flip, channels_last, in-place activations, foreach SGD, no per-step sync) trains the same model
to the same loss as a plain PyTorch loop written the obvious way."""

import pytest
import torch
from conftest import tiny_spec
from torch.nn import functional as F

from elubench.data.load import load_data
from elubench.net.build import build_model
from elubench.spec.loader import validate_spec
from elubench.spec.matrix import expand
from elubench.training.steps import build_for_training, make_step


def _spec(activation, bn):
    return validate_spec(
        tiny_spec(
            data={
                "dataset": "synthetic",
                "preprocess": "standardize",
                "synthetic": {
                    "shape": [3, 12, 12],
                    "classes": 4,
                    "train_size": 96,
                    "test_size": 16,
                },
                "augment": {"pad": 2, "crop": 12, "hflip": True},
            },
            model={"stacks": ["1x8x3", "1x8x1, 1x12x2", "1x4x1"], "dropout": 0.0},
            train={
                "batch_size": 16,
                "lr": 0.05,
                "iterations": 12,
                "optimizer": {"momentum": 0.9, "weight_decay": 0.001},
            },
            compare={"activations": [activation], "batchnorm": [bn], "seeds": 1},
        )
    )


def _plain_batches(data, epoch, seed, batch_size):
    """The same draws, applied image by image with slicing and torch.flip."""
    order, top, left, flip = data.epoch_draws(epoch, seed)
    size = data.input_shape[1]
    for start in range(0, data.steps_per_epoch(batch_size) * batch_size, batch_size):
        images, labels = [], []
        for k in range(start, start + batch_size):
            i = int(order[k])
            image = data.train_x[
                i, :, int(top[k]) : int(top[k]) + size, int(left[k]) : int(left[k]) + size
            ]
            images.append(torch.flip(image, dims=[2]) if flip[k] else image)
            labels.append(data.train_y[i])
        yield torch.stack(images).contiguous(), torch.stack(labels)


@pytest.mark.slow
@pytest.mark.parametrize(
    "activation, bn",
    [("elu", False), ("relu", True), ("srelu", False), ("prelu", True), ("lrelu(0.2)", False)],
)
def test_engine_matches_a_plain_loop(activation, bn):
    spec = _spec(activation, bn)
    cfg = expand(spec)[0]
    data = load_data(spec.data, device="cpu")
    device = torch.device("cpu")

    model, optimizer, _, memory_format = build_for_training(spec, cfg, device)
    step = make_step(model, optimizer, spec.task, "fp32", memory_format)
    engine_losses = []
    for epoch in range(2):
        for x, y in data.epoch_batches(epoch, cfg.seed, 16):
            engine_losses.append(step(x, y).item())

    plain = build_model(spec, activation, bn, seed=cfg.seed)  # NCHW, plain modules
    for module in plain.modules():  # the obvious way: no in-place activations
        if hasattr(module, "inplace"):
            module.inplace = False
    decay, no_decay = [], []
    for module in plain.modules():
        own = list(module.parameters(recurse=False))
        (no_decay if isinstance(module, (torch.nn.PReLU, torch.nn.BatchNorm2d)) else decay).extend(
            own
        )
    opt = torch.optim.SGD(
        [{"params": decay, "weight_decay": 0.001}, {"params": no_decay, "weight_decay": 0.0}],
        lr=0.05,
        momentum=0.9,
        foreach=False,
    )
    plain_losses = []
    for epoch in range(2):
        for x, y in _plain_batches(data, epoch, cfg.seed, 16):
            loss = F.cross_entropy(plain(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            plain_losses.append(loss.item())

    assert len(engine_losses) == len(plain_losses) == 12
    torch.testing.assert_close(
        torch.tensor(engine_losses), torch.tensor(plain_losses), rtol=1e-4, atol=1e-5
    )
    for (name, a), b in zip(model.state_dict().items(), plain.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.slow
def test_bf16_autocast_trains(tmp_path):
    from elubench.execution.runner import execute_run
    from elubench.execution.state import RunSettings

    spec = validate_spec(
        tiny_spec(
            train={"batch_size": 32, "lr": 0.05, "iterations": 60, "precision": "bf16"},
            compare={"activations": ["elu"], "batchnorm": [True], "seeds": 1},
        )
    )
    record = execute_run(spec, expand(spec)[0], RunSettings(results=tmp_path, device="cpu"))
    assert record["status"] == "ok" and record["precision"] == "bf16"
    assert record["test_error"] < 0.5  # chance is 0.9


@pytest.mark.slow
def test_compiled_step_matches_eager():
    spec = _spec("elu", True)
    cfg = expand(spec)[0]
    data = load_data(spec.data, device="cpu")
    losses = {}
    for compiled in (False, True):
        model, optimizer, _, memory_format = build_for_training(spec, cfg, torch.device("cpu"))
        step = make_step(model, optimizer, spec.task, "fp32", memory_format, compile=compiled)
        losses[compiled] = [step(x, y).item() for x, y in data.epoch_batches(0, cfg.seed, 16)]
    torch.testing.assert_close(
        torch.tensor(losses[True]), torch.tensor(losses[False]), rtol=1e-3, atol=1e-4
    )
