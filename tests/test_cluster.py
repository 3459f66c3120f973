"""Running on a cluster: two DDP nodes started as a cluster launcher would start them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import hydra
import pytest
import torch

from helpers import TINY, compose_config, train_command

TESTS_DIR = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_synthetic(data_dir: Path) -> None:
    """Generates the synthetic videos once, before several processes read them."""
    cfg = compose_config("train", [f"paths.data_dir={data_dir}", *TINY])
    hydra.utils.instantiate(cfg.data).prepare_data()


def launcher_env(**variables: str | int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "PMI_"))}
    return {**env, "PYTHONPATH": str(TESTS_DIR), **{k: str(v) for k, v in variables.items()}}


@pytest.mark.slow
def test_two_nodes_train_one_model(tmp_path, data_dir):
    """trainer=ddp, num_nodes=2, one process per node with the variables a launcher sets."""
    prepare_synthetic(data_dir)
    run = tmp_path / "ddp2"
    cmd = train_command(
        run,
        data_dir,
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
    # DistributedSampler over the two nodes: each trains on its own clips, 4 steps x batch 2
    seen = [json.loads((run / f"clips_rank{r}.json").read_text()) for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 8
    assert not {tuple(c) for c in seen[0][:4]} & {tuple(c) for c in seen[1][:4]}
    # gradients were averaged across the nodes: both end with the same weights
    weights = [torch.load(run / f"weights_rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        torch.testing.assert_close(weights[0][name], weights[1][name], rtol=0, atol=0)
    ckpt = torch.load(run / "checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 4
    for name, value in ckpt["state_dict"].items():
        torch.testing.assert_close(value, weights[0][name], rtol=0, atol=0)
