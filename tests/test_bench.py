import json
import math
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from torch import nn

from vidinpaint import bench
from vidinpaint.bench import common, throughput, training
from vidinpaint.models.completion import CompletionSystem

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


def bench_cfg(tmp_path, *overrides):
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        return compose(
            "bench", overrides=[f"paths.output_dir={tmp_path / 'run'}", "seed=0", *overrides]
        )


def conv_flops(system, batch):
    """Independent count: 2 x MACs of every convolution in a forward pass, and the backward
    pass as grad-weight (same FLOPs) + grad-input (same FLOPs, only if the input needs it)."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        kernel = math.prod(module.kernel_size)
        if isinstance(module, nn.modules.conv._ConvTransposeNd):
            macs = inputs[0].numel() * module.out_channels // module.groups * kernel
        else:
            macs = output.numel() * module.in_channels // module.groups * kernel
        total += 2 * macs * (2 + inputs[0].requires_grad)

    convs = [m for m in system.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    handles = [m.register_forward_hook(hook) for m in convs]
    system(batch["masked"], batch["mask"])
    for handle in handles:
        handle.remove()
    return total


def test_train_bench_cn3d_tiny_record_flops_and_json(tmp_path):
    out = tmp_path / "extra" / "bench.json"
    cfg = bench_cfg(
        tmp_path,
        "mode=train",
        "model=cn3d",
        "device=cpu",
        "clip_len=4",
        "size=32",
        "iters=2",
        "warmup=1",
        f"out={out}",
    )
    record = bench.run(cfg)
    assert record["model"] == "cn3d"
    assert (record["batch_size"], record["clip_len"], record["size"]) == (1, 4, [32, 32])
    assert record["ms_per_iter"] > 0
    assert record["ms_min"] <= record["ms_per_iter"] <= record["ms_max"]
    assert record["samples_per_s"] == pytest.approx(1e3 / record["ms_per_iter"])
    assert record["peak_memory_mb"] > 0
    assert record["mfu"] is None  # CPU without peak_tflops=
    expected = conv_flops(
        CompletionSystem(method="cn3d"),
        training.external_batch(1, 4, (32, 32), torch.device("cpu")),
    )
    assert record["flops_per_iter"] == expected
    assert record["tflops_per_s"] == pytest.approx(expected / (record["ms_per_iter"] / 1e3) / 1e12)
    for path in (tmp_path / "run" / "bench.json", out):
        assert json.loads(path.read_text())["flops_per_iter"] == expected


def test_train_bench_mfu_from_given_peak(tmp_path):
    cfg = bench_cfg(
        tmp_path,
        "model=cn2d",
        "device=cpu",
        "clip_len=2",
        "size=16",
        "iters=1",
        "warmup=0",
        "peak_tflops=0.5",
    )
    record = bench.run(cfg)
    assert record["peak_tflops"] == 0.5
    assert record["mfu"] == pytest.approx(record["tflops_per_s"] / 0.5)


@pytest.mark.filterwarnings("ignore:.*self.log.*")
def test_flops_scale_with_frames(tmp_path):
    """CN3D is fully convolutional and keeps time: twice the frames, twice the FLOPs."""
    flops = []
    for clip_len in (2, 4):
        cfg = bench_cfg(tmp_path, "model=cn3d", "device=cpu", f"clip_len={clip_len}", "size=16")
        system = training.build_system(cfg, compile=False)
        flops.append(training.count_flops(training.make_step(cfg, system, torch.device("cpu"))[0]))
    assert flops[1] == 2 * flops[0]


def test_speed_switch_missing_from_model_is_an_error(tmp_path):
    cfg = bench_cfg(tmp_path, "model=telea", "device=cpu", "channels_last=true")
    with pytest.raises(ValueError, match="no channels_last option"):
        training.build_system(cfg, compile=False)


def test_peak_table_and_cpu():
    assert common.peak_tflops_for(torch.device("cpu"), "bf16")[0] is None
    assert common.PEAK_TFLOPS["H100"]["bf16"] == 989.0


def test_main_turns_leading_word_into_mode(monkeypatch):
    seen = []
    monkeypatch.setattr(bench, "hydra_main", lambda: seen.append(list(sys.argv)))
    monkeypatch.setattr(sys, "argv", ["vidinpaint-bench", "data", "data_bench.num_clips=4"])
    bench.main()
    monkeypatch.setattr(sys, "argv", ["vidinpaint-bench", "model=cn3d"])
    bench.main()
    assert seen == [
        ["vidinpaint-bench", "mode=data", "data_bench.num_clips=4"],
        ["vidinpaint-bench", "model=cn3d"],
    ]


def test_data_bench_tiny_synthetic(tmp_path):
    cfg = bench_cfg(
        tmp_path,
        "mode=data",
        f"data.root={tmp_path / 'synthetic'}",
        "data.clip_len=4",
        "data.size=[32,32]",
        "data.adapter.num_videos=3",
        "data.adapter.num_frames=16",
        "data.adapter.frame_size=64",
        "data_bench.num_clips=4",
        "data_bench.samples=null",
        "data_bench.fullres_frame_size=96",
        "data_bench.fullres_videos=2",
    )
    result = bench.run(cfg)
    rows = result["rows"]
    for dataset in ("synthetic", "synthetic-96px"):
        mine = [r for r in rows if r["dataset"] == dataset]
        loaders = [r for r in mine if r["reader"] == "datamodule"]
        assert [r["workers"] for r in loaders] == [0, 1, 2]
        (raw,) = [r for r in mine if r["reader"] == "raw decord"]
        for row in [*loaders, raw]:
            assert row["clips"] >= 4 and row["clips_per_s"] > 0
        for row in loaders:
            assert row["vs_raw"] == pytest.approx(row["clips_per_s"] / raw["clips_per_s"])
    prepared = [r for r in rows if r["reader"] == "datamodule, prepared clips"]
    assert [r["workers"] for r in prepared] == [0, 1, 2]
    assert all(r["vs_full"] > 0 for r in prepared)
    assert "synthetic-96px/prepared_vs_full_resolution" in result["targets"]
    written = json.loads((tmp_path / "run" / "bench.json").read_text())
    assert written["rows"] == rows


def test_raw_decode_reads_the_requested_frames(tmp_path):
    from vidinpaint.video_write import write_video

    frames = torch.zeros(6, 64, 64, 3, dtype=torch.uint8)
    path = tmp_path / "v.mp4"
    write_video(path, frames, 25.0)
    seconds, rate = throughput.raw_decode_throughput([(str(path), 2), (str(path), 0)], 4, 1)
    assert seconds > 0 and rate == pytest.approx(2 / seconds)
    with pytest.raises(Exception):  # noqa: B017  (decord's own error type)
        throughput.raw_decode_throughput([(str(path), 4)], 4, 1)
    assert throughput.raw_decode_throughput([(str(tmp_path), 0)], 4, 1) is None
