"""Forward + backward of one activation on a 64x32x8x8 tensor on one thread: PyTorch's kernels
against elubench's (layers.ExpLinear), interleaved, median of 7 rounds of 200 calls, less the
cost of the clone and the backward's plumbing that every activation pays (issue 17).

    python benchmarks/activation_kernels.py
"""

import statistics
import time

import torch
from torch.nn import functional as F

from elubench.activations.kernels import ExpLinearCPU
from elubench.activations.modules import SELU_ALPHA, SELU_SCALE

torch.set_num_threads(1)
x0 = torch.randn(64, 32, 8, 8)
grad = torch.randn_like(x0)
leaf = x0.clone().requires_grad_()


def timed(fn, n=200):
    for _ in range(10):
        fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def forward_backward(act):
    return lambda: act(leaf.clone()).backward(grad)


def ours(alpha, scale=1.0, input_scale=1.0, inplace=False):
    return lambda x: ExpLinearCPU.apply(x, alpha, scale, input_scale, inplace)


CASES = {
    "identity (clone + backward)": lambda x: x,
    "relu": torch.relu,
    "silu": F.silu,
    "elu, torch": F.elu,
    "elu, elubench": ours(1.0),
    "selu, torch": F.selu,
    "selu, elubench": ours(SELU_ALPHA, SELU_SCALE),
    "celu(2), torch": lambda x: F.celu(x, 2.0),
    "celu(2), elubench": ours(2.0, 1.0, 0.5),
    "elu in place, torch": F.elu_,
    "elu in place, elubench": ours(1.0, inplace=True),
}

results = {name: [] for name in CASES}
for _ in range(7):
    for name, act in CASES.items():
        results[name].append(timed(forward_backward(act)))
base = statistics.median(results["identity (clone + backward)"])
relu = statistics.median(results["relu"]) - base
for name, values in results.items():
    total = statistics.median(values)
    print(
        f"{name:28s} {total:8.0f} us total {total - base:8.0f} us activation "
        f"{(total - base) / relu:5.2f}x relu"
    )
