"""Each 3DCN layer's bf16 weight gradient against fp32's, at the layer's own input shape in
the network, for CPU choices (experiments/benchmarks.md, "CPU fast paths").

    OMP_NUM_THREADS=1 python experiments/conv3d_bf16_check.py --size 2 4 16 16 --trials 30

``--size B T h w`` is the 3DCN's input (the quickstart's: 2 4 16 16). For every layer: the
number of trials (random input and output gradient) whose bf16-autocast weight gradient is
non-finite or off by more than 5% of fp32's largest value, and the worst relative error.
"""

from __future__ import annotations

import argparse

import torch

from vidinpaint.nets.cn3d import CN3D


def layer_inputs(net: CN3D, size: list[int]) -> dict[int, torch.Size]:
    """Table row -> the input shape of its convolution in a forward pass."""
    b, t, h, w = size
    shapes: dict[int, torch.Size] = {}
    hooks = [
        layer.conv.register_forward_hook(
            lambda module, args, out, n=n: shapes.__setitem__(n, args[0].shape)
        )
        for n, layer in enumerate(net.layers, start=1)
    ]
    with torch.no_grad():
        net(torch.rand(b, t, 3, h, w), torch.ones(b, t, 1, h, w))
    for hook in hooks:
        hook.remove()
    return shapes


def check(conv: torch.nn.Module, shape: torch.Size, trials: int) -> tuple[int, float]:
    """(trials off by more than 5% or non-finite, worst finite relative error)."""
    bad, worst = 0, 0.0
    for _ in range(trials):
        x = torch.randn(shape)
        out = conv(x)
        grad_out = torch.randn_like(out)
        expected = torch.autograd.grad(out, conv.weight, grad_out)[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out16 = conv(x)
        got = torch.autograd.grad(out16, conv.weight, grad_out.to(out16.dtype))[0]
        if not torch.isfinite(got).all():
            bad += 1
            continue
        error = ((got.float() - expected).abs().max() / expected.abs().max()).item()
        worst = max(worst, error)
        bad += error > 0.05
    return bad, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, nargs=4, default=[2, 4, 16, 16], metavar="N")
    parser.add_argument("--trials", type=int, default=30)
    args = parser.parse_args()
    torch.manual_seed(0)
    net = CN3D()
    for number, shape in layer_inputs(net, args.size).items():
        conv = net.layers[number - 1].conv
        bad, worst = check(conv, shape, args.trials)
        print(
            f"layer {number:2d} {type(conv).__name__} {conv.in_channels}->{conv.out_channels} "
            f"in {tuple(shape)}: bad {bad}/{args.trials}, worst relative error {worst:.3g}",
            flush=True,
        )


if __name__ == "__main__":
    main()
