"""Joint 3DCN + CombCN steps on the real face sample (realdata tier)."""

import hydra
import pytest
import torch

from helpers import compose_config
from vidinpaint.models.completion import CompletionSystem


@pytest.mark.realdata
def test_joint_steps_on_the_face_sample_lower_the_loss(samples, tmp_path):
    cfg = compose_config(
        "train",
        [
            "data=folder",
            f"data.root={samples}/face",
            f"data.cache_dir={tmp_path}",
            "data.clip_len=8",
            "data.size=[64,64]",
            "data.batch_size=2",
            "data.num_workers=0",
        ],
    )
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")
    batch = datamodule.on_after_batch_transfer(next(iter(datamodule.train_dataloader())), 0)
    assert batch["video"].shape == (2, 8, 3, 64, 64)
    torch.manual_seed(0)
    system = CompletionSystem(method="combcn", mean_pixel=datamodule.mean_pixel, weight_decay=0)
    optimizer = system.configure_optimizers()
    losses = []
    for _ in range(8):
        loss = system.losses(system(batch["masked"], batch["mask"]), batch["video"], batch["mask"])[
            "loss"
        ]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses
