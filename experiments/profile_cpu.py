"""Where a CPU training iteration's time goes: torch.profiler over vidinpaint-bench's step.

    python experiments/profile_cpu.py model=combcn                      # 1x32x128x128
    python experiments/profile_cpu.py model=combcn precision=bf16 channels_last=true
    python experiments/profile_cpu.py model=dip_vid_flow

Takes ``vidinpaint-bench train`` overrides (``conf/bench.yaml``): the same system, synthetic
batch and iteration (``training_step`` under autocast, backward, optimizer step). Runs
``--warmup`` iterations, profiles ``--iters`` more on the CPU and prints the self time of
every operator summed by class (convolutions by kind and direction, BatchNorm, activations,
concatenations, padding, up-sampling, warping, casts and copies, the losses' forward, the
optimizer), then the ten most expensive ATen operators. ``--json PATH`` also writes the rows.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections import defaultdict
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from torch.profiler import ProfilerActivity, profile, record_function

from vidinpaint import CONF_DIR
from vidinpaint.bench import common, training

# operator name -> class; the innermost classified ancestor of an event names its class
CLASSES = {
    "aten::native_batch_norm": "BatchNorm fwd",
    "aten::_native_batch_norm_legit": "BatchNorm fwd",
    "aten::_native_batch_norm_legit_no_training": "BatchNorm fwd",
    "aten::native_batch_norm_backward": "BatchNorm bwd",
    "aten::relu_": "ReLU / LeakyReLU fwd",
    "aten::relu": "ReLU / LeakyReLU fwd",
    "aten::leaky_relu": "ReLU / LeakyReLU fwd",
    "aten::leaky_relu_": "ReLU / LeakyReLU fwd",
    "aten::threshold_backward": "ReLU / LeakyReLU bwd",
    "aten::leaky_relu_backward": "ReLU / LeakyReLU bwd",
    "aten::cat": "concatenation (fwd)",
    "aten::reflection_pad2d": "padding fwd",
    "aten::replication_pad2d": "padding fwd",
    "aten::reflection_pad2d_backward": "padding bwd",
    "aten::replication_pad2d_backward": "padding bwd",
    "aten::upsample_nearest2d": "up-sampling fwd",
    "aten::upsample_nearest2d_backward": "up-sampling bwd",
    "aten::grid_sampler_2d": "warping (L_c) fwd",
    "aten::grid_sampler_2d_backward": "warping (L_c) bwd",
    "aten::_to_copy": "casts and layout copies",
    "aten::copy_": "casts and layout copies",
    "aten::contiguous": "casts and layout copies",
}
LOSSES = "losses (forward)"


def conv_class(event) -> str:
    """``conv2d dilated fwd`` etc. from a convolution event's recorded arguments."""
    backward = event.name == "aten::convolution_backward"
    args = event.concrete_inputs
    # convolution: input, weight, bias, stride, padding, dilation, transposed, ...;
    # convolution_backward: grad_out, input, weight, bias_sizes, stride, padding, dilation, ...
    stride, _, dilation, transposed = args[4:8] if backward else args[3:7]
    dims = len(stride)
    if transposed:
        kind = f"deconv{dims}d (transposed)"
    elif max(dilation) > 1:
        kind = f"conv{dims}d dilated"
    elif max(stride) > 1:
        kind = f"conv{dims}d strided"
    else:
        kind = f"conv{dims}d"
    return f"{kind} {'bwd' if backward else 'fwd'}"


def classify(event) -> str:
    """The class of an event's self time: the optimizer or the losses when inside them,
    else its innermost classified ancestor (itself included), else ``other``."""
    chain = []
    node = event
    while node is not None:
        chain.append(node)
        node = node.cpu_parent
    names = [e.name for e in chain]
    if any(n.startswith("Optimizer.") for n in names):
        return "optimizer (Adam, zero_grad)"
    for node in chain:
        if node.name in ("aten::convolution", "aten::convolution_backward"):
            return conv_class(node)
        if node.name in CLASSES:
            return CLASSES[node.name]
        if node.name == LOSSES:
            return LOSSES
    return "other (elementwise, reductions, autograd)"


def profile_step(overrides: list[str], warmup: int, iters: int) -> dict:
    """Profiles ``iters`` iterations of the bench's step; returns class and operator rows."""
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose("bench", overrides=["device=cpu", *overrides])
    cfg.paths.output_dir = str(Path("outputs/profile_cpu").resolve())
    torch.manual_seed(cfg.seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*self.log.*")
        warnings.filterwarnings("ignore", message=".*self.trainer.*")
        system = training.build_system(cfg, compile=False)
        losses = system.losses
        # the losses' forward as one labelled range (their backward lands in the other rows)

        def labelled(*args, **kwargs):
            with record_function(LOSSES):
                return losses(*args, **kwargs)

        system.losses = labelled
        step, shape = training.make_step(cfg, system, torch.device("cpu"))
        for _ in range(warmup):
            step()
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            begin = time.perf_counter()
            for _ in range(iters):
                step()
            wall = (time.perf_counter() - begin) / iters
    by_class: dict[str, float] = defaultdict(float)
    by_op: dict[str, float] = defaultdict(float)
    for event in prof.events():
        by_class[classify(event)] += event.self_cpu_time_total / 1e3 / iters
        by_op[event.name] += event.self_cpu_time_total / 1e3 / iters
    return {
        "model": cfg.model.method,
        "precision": cfg.precision,
        "channels_last": bool(cfg.channels_last),
        **shape,
        "wall_ms_per_iter": 1e3 * wall,
        "classes_ms": dict(sorted(by_class.items(), key=lambda kv: -kv[1])),
        "top_ops_ms": dict(sorted(by_op.items(), key=lambda kv: -kv[1])[:10]),
        **common.environment(),
    }


def print_rows(result: dict) -> None:
    total = sum(result["classes_ms"].values())
    print(
        f"{result['model']} {result['clip_len']}x{result['size'][0]}x{result['size'][1]} "
        f"precision={result['precision']} channels_last={result['channels_last']}: "
        f"{result['wall_ms_per_iter']:.0f} ms/iter (profiled), load {result['load_avg_1min']:.2f}"
    )
    print("| class | ms/iter | share |\n|---|---:|---:|")
    for name, ms in result["classes_ms"].items():
        print(f"| {name} | {ms:,.0f} | {100 * ms / total:.1f}% |")
    print("\n| ATen operator (self time) | ms/iter |\n|---|---:|")
    for name, ms in result["top_ops_ms"].items():
        print(f"| `{name}` | {ms:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("overrides", nargs="*", help="vidinpaint-bench train overrides")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = profile_step(args.overrides, args.warmup, args.iters)
    print_rows(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
