"""Running on a cluster: two DDP nodes started as a cluster launcher would start them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import hydra
import pytest
import torch
from lightning.pytorch import Callback

from helpers import TINY, compose_config, train_command
from vidinpaint.data.datamodule import ClipDataModule
from vidinpaint.data.litdata import write_litdata
from vidinpaint.runs import resolve_ckpt_path

TESTS_DIR = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_synthetic(data_dir: Path) -> ClipDataModule:
    """Generates the synthetic videos once, before several processes read them."""
    cfg = compose_config("train", [f"paths.data_dir={data_dir}", *TINY])
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.prepare_data()
    return datamodule


def launcher_env(**variables: str | int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "PMI_"))}
    return {**env, "PYTHONPATH": str(TESTS_DIR), **{k: str(v) for k, v in variables.items()}}


@pytest.mark.slow
@pytest.mark.parametrize("data", ["synthetic", "litdata"])
def test_two_nodes_train_one_model(tmp_path, data_dir, data):
    """trainer=ddp, num_nodes=2, one process per node with the variables a launcher sets;
    the clips decoded from the videos (DistributedSampler) or streamed from LitData chunks."""
    datamodule = prepare_synthetic(data_dir)
    data_options = []
    if data == "litdata":
        write_litdata(datamodule.build_index(), str(tmp_path / "chunks"), chunk_clips=2)
        data_options = ["data=litdata", f"data.input_dir={tmp_path / 'chunks'}"]
    run = tmp_path / "ddp2"
    cmd = train_command(
        run,
        data_dir,
        *data_options,
        "trainer=ddp",
        "trainer.num_nodes=2",
        "trainer.devices=1",
        "trainer.accelerator=cpu",
        "trainer.precision=32-true",
    )
    cluster = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": free_port(), "WORLD_SIZE": 2}
    nodes = [
        subprocess.Popen(
            cmd,
            env=launcher_env(**cluster, NODE_RANK=rank, LOCAL_RANK=0),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    logs = [node.communicate(timeout=600)[0] for node in nodes]
    for node, log in zip(nodes, logs):
        assert node.returncode == 0, log[-3000:]
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["last.ckpt"]
    assert list(run.rglob("metrics.json")) == [run / "metrics.json"]
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 4
    # each node trains on its own clips of the epoch, 4 steps x batch 2
    clips = [json.loads((run / f"clips_rank{r}.json").read_text()) for r in (0, 1)]
    seen = [{tuple(c) for c in rank_clips} for rank_clips in clips]
    assert len(seen[0]) == len(seen[1]) == 8
    assert not seen[0] & seen[1]
    # gradients were averaged across the nodes: both end with the same weights
    weights = [torch.load(run / f"weights_rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        torch.testing.assert_close(weights[0][name], weights[1][name], rtol=0, atol=0)
    ckpt = torch.load(run / "checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 4
    for name, value in ckpt["state_dict"].items():
        torch.testing.assert_close(value, weights[0][name], rtol=0, atol=0)


def test_ckpt_path_last_takes_the_newest_of_last_and_requeue_checkpoints(tmp_path):
    last = tmp_path / "checkpoints" / "last.ckpt"
    hpc = [tmp_path / "hpc_ckpt_1.ckpt", tmp_path / "hpc_ckpt_2.ckpt"]
    assert resolve_ckpt_path("last", tmp_path) is None
    for age, path in ((30, hpc[0]), (20, last), (10, hpc[1])):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"")
        os.utime(path, ns=(0, 10**12 - age * 10**9))
    assert resolve_ckpt_path("last", tmp_path) == str(hpc[1])
    hpc[1].unlink()
    assert resolve_ckpt_path("last", tmp_path) == str(last)


class SignalAt(Callback):
    """Sends ``signum`` (a name, e.g. SIGUSR1) to this process after ``step`` optimiser steps,
    as SLURM does shortly before a job's time limit."""

    def __init__(self, step: int, signum: str) -> None:
        self.step, self.signum = step, getattr(signal, signum)

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


def fake_scontrol(folder: Path) -> Path:
    """An ``scontrol`` that records its arguments and, as SLURM's requeue does, sends SIGTERM
    to the job (its caller)."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "scontrol"
    script.write_text(f'#!/bin/sh\necho "$@" >> {folder}/calls\nkill -TERM $PPID\n')
    script.chmod(0o755)
    return folder / "calls"


@pytest.mark.slow
def test_slurm_signal_checkpoints_requeues_and_resumes(tmp_path, data_dir):
    """trainer=slurm: SIGUSR1 writes a checkpoint and calls ``scontrol requeue <job>``; the
    requeued job (same run folder, ckpt_path=last) continues at the step reached."""
    prepare_synthetic(data_dir)
    calls = fake_scontrol(tmp_path / "bin")
    run = tmp_path / "slurm-4242"
    cmd = train_command(
        run,
        data_dir,
        "trainer=slurm",
        "trainer.accelerator=cpu",
        "trainer.precision=32-true",
        "trainer.devices=1",
        "trainer.max_steps=6",
        "schedule.checkpoint_every=100",
        "ckpt_path=last",
    )
    slurm = {
        "SLURM_JOB_ID": 4242,
        "SLURM_JOB_NAME": "vidinpaint",
        "SLURM_NTASKS": 1,
        "SLURM_NTASKS_PER_NODE": 1,
        "SLURM_NNODES": 1,
        "SLURM_PROCID": 0,
        "SLURM_LOCALID": 0,
        "SLURM_NODEID": 0,
        "SLURM_NODELIST": "127.0.0.1",
        "MASTER_PORT": free_port(),
        "PATH": f"{calls.parent}:{os.environ['PATH']}",
    }
    signal_at = [
        "+callbacks.preempt._target_=test_cluster.SignalAt",
        "+callbacks.preempt.step=2",
        "+callbacks.preempt.signum=SIGUSR1",
    ]
    first = subprocess.run(
        cmd + signal_at, env=launcher_env(**slurm), capture_output=True, text=True, timeout=600
    )
    assert calls.read_text().split() == ["requeue", "4242"], first.stderr[-3000:]
    (hpc,) = run.glob("hpc_ckpt_*.ckpt")
    assert torch.load(hpc, map_location="cpu", weights_only=False)["global_step"] == 2
    last = torch.load(run / "checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    assert last["global_step"] == 2
    assert not (run / "metrics.json").exists()  # the job stopped there
    # the requeued job: same command, same run folder
    second = subprocess.run(
        cmd,
        env=launcher_env(**slurm, SLURM_RESTART_COUNT=1),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert second.returncode == 0, second.stderr[-3000:]
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 6
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["last.ckpt"]
    assert torch.load(run / "checkpoints/last.ckpt", weights_only=False)["global_step"] == 6
    # it trained the 4 remaining steps (batch 2), not 6 from scratch
    assert len(json.loads((run / "clips_rank0.json").read_text())) == 4 * 2
    assert calls.read_text().split() == ["requeue", "4242"]


@pytest.mark.slow
def test_submitit_local_sweep_runs_every_cell(tmp_path, data_dir):
    """A two-cell sweep on hydra/launcher=submitit_local: each cell a job of its own."""
    prepare_synthetic(data_dir)
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "vidinpaint.train", "-m", "hydra/launcher=submitit_local"]
    cmd += ["hydra.launcher.timeout_min=10", f"hydra.sweep.dir={sweep}", "seed=1,2"]
    cmd += ["schedule=tiny", "logger=csv", "num_samples=0", f"paths.data_dir={data_dir}", *TINY]
    proc = subprocess.run(cmd, env=launcher_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # cells are named by the swept options (not by paths), one submitit job each
    cells = sorted(p.parent.relative_to(sweep) for p in sweep.glob("*/metrics.json"))
    assert [str(c).split(",")[-1] for c in cells] == ["seed=1", "seed=2"]
    metrics = [json.loads((sweep / c / "metrics.json").read_text()) for c in cells]
    assert [m["seed"] for m in metrics] == [1, 2] and all(m["global_step"] == 4 for m in metrics)
    assert len(list(sweep.glob(".submitit/*/*_result.pkl"))) == 2


@pytest.mark.slow
def test_submitit_requeues_a_preempted_cell_that_resumes(tmp_path, data_dir):
    """hydra/launcher=submitit_*: submitit's preemption signal (USR2) requeues the cell through
    the launcher's checkpoint hook; the run saves checkpoints/last.ckpt as it stops, and the
    requeued cell (same folder, ckpt_path=last) continues at the step reached."""
    prepare_synthetic(data_dir)
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "vidinpaint.train", "-m", "hydra/launcher=submitit_local"]
    cmd += ["hydra.launcher.timeout_min=10", f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=cell"]
    cmd += ["schedule=tiny", "logger=csv", "num_samples=0", f"paths.data_dir={data_dir}", *TINY]
    cmd += ["trainer.max_steps=6", "schedule.checkpoint_every=100", "ckpt_path=last"]
    cmd += ["+callbacks.preempt._target_=test_cluster.SignalAt", "+callbacks.preempt.step=2"]
    cmd += ["+callbacks.preempt.signum=SIGUSR2", "+callbacks.clips._target_=helpers.ClipRecorder"]
    cmd += ["+callbacks.clips.dirpath=${paths.output_dir}"]
    proc = subprocess.run(cmd, env=launcher_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    logs = "".join(p.read_text() for p in sweep.glob(".submitit/*/*_0_log.*"))
    assert "Requeued job" in logs and "SystemExit at step 2: saved" in logs
    cell = sweep / "cell"
    assert json.loads((cell / "metrics.json").read_text())["global_step"] == 6
    assert [p.name for p in (cell / "checkpoints").iterdir()] == ["last.ckpt"]
    # the requeued run trained the 4 remaining steps (batch 2)
    assert len(json.loads((cell / "clips_rank0.json").read_text())) == 4 * 2
