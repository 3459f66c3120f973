"""GPU speed switches of the external system, exercised on the CPU at tiny shapes: compile,
fused Adam, no graph breaks, no host-device sync per training step."""

from __future__ import annotations

import traceback

import torch
from torch import nn

from helpers import TINY, compose_config
from vidinpaint.models.completion import CompletionSystem
from vidinpaint.train import train


def tiny_batch(frames: int = 4, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    video = torch.rand(1, frames, 3, size, size, generator=generator)
    mask = torch.zeros(1, frames, 1, size, size)
    mask[..., 8:20, 10:22] = 1
    return video, mask


def test_forward_and_losses_trace_into_one_graph():
    """A graph break splits the compiled step and adds Python overhead on the GPU."""
    video, mask = tiny_batch()
    for method in ("cn3d", "combcn", "cn2d"):
        system = CompletionSystem(method=method)

        def step(video, mask, system=system):
            out = system(system.fill(video, mask), mask)
            return system.losses(out, video, mask)["loss"]

        explained = torch._dynamo.explain(step)(video, mask)
        assert explained.graph_break_count == 0, (method, explained.break_reasons)
        assert explained.graph_count == 1, method


def test_compiled_training_step_runs_on_the_cpu(monkeypatch):
    """``model.compile=true`` (inductor) trains: a broken compile option fails here."""
    modes = []
    compile_module = nn.Module.compile

    def recording_compile(module, *args, **kwargs):
        modes.append(kwargs.get("mode"))
        return compile_module(module, *args, **kwargs)

    monkeypatch.setattr(nn.Module, "compile", recording_compile)
    system = CompletionSystem(method="cn3d", compile=True, compile_mode="default")
    system.configure_model()
    assert modes == ["default"]
    optimizer = system.configure_optimizers()
    video, mask = tiny_batch()
    batch = {"video": video, "mask": mask, "masked": system.fill(video, mask)}
    losses = []
    for _ in range(2):
        out = system(batch["masked"], mask)
        loss = system.losses(out, video, mask)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    eager = CompletionSystem(method="cn3d")
    eager.load_state_dict(system.state_dict())
    assert all(torch.isfinite(torch.tensor(losses)))
    # the compiled nets compute what the eager ones do
    with torch.no_grad():
        system.eval(), eager.eval()
        compiled_out = system(batch["masked"], mask)["cn3d"]
        eager_out = eager(batch["masked"], mask)["cn3d"]
    torch.testing.assert_close(compiled_out, eager_out, rtol=1e-4, atol=1e-4)


def test_fused_adam_keeps_the_decay_groups():
    system = CompletionSystem(method="combcn", fused_adam=True)
    optimizer = system.configure_optimizers()
    assert optimizer.defaults["fused"] is True
    plain = CompletionSystem(method="combcn", fused_adam=False).configure_optimizers()
    assert not plain.defaults["fused"]
    assert [g["weight_decay"] for g in optimizer.param_groups] == [
        g["weight_decay"] for g in plain.param_groups
    ]


def test_training_steps_do_not_read_the_device_every_step(tmp_path, data_dir, monkeypatch):
    """Each ``.item()``/``float()`` of a device tensor is a host-device sync; the training loop
    (losses, logging, progress bar, optimiser) reads the losses once every
    ``log_every_n_steps`` steps, not every step (before: 8 reads per step)."""
    reads = []

    def counted(original):
        def read(tensor):
            # the loaders' samplers read CPU index tensors, never a device's: not counted
            if not any("torch/utils/data" in f.filename for f in traceback.extract_stack()):
                reads.append(tuple(tensor.shape))
            return original(tensor)

        return read

    cfg = compose_config(
        "train",
        [
            "model=combcn",
            "schedule=tiny",
            "logger=csv",
            f"paths.data_dir={data_dir}",
            *TINY,
            "trainer.max_steps=8",
            "trainer.log_every_n_steps=4",
            "trainer.limit_val_batches=0",
            "validate=false",
            "num_samples=0",
        ],
        output_dir=tmp_path / "run",
    )
    monkeypatch.setattr(torch.Tensor, "item", counted(torch.Tensor.item))
    monkeypatch.setattr(torch.Tensor, "__float__", counted(torch.Tensor.__float__))
    result = train(cfg)
    assert result["global_step"] == 8
    # the 3 losses at steps 4 and 8 by the logger and by the bar, the 2 perf/ values at step 8
    # (after the DataWait warm-up) by the logger, then the 7 values of metrics.json once;
    # a read per step would be 8 or more: 24 in the loop alone
    assert len(reads) <= 2 * (3 + 3) + 2 + 7, reads
