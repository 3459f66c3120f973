"""Every recipe composes from the real configs and runs one step (fast_dev_run)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from helpers import CONF_DIR, TINY, compose_config
from vidinpaint import models
from vidinpaint.models.completion import CompletionSystem
from vidinpaint.train import train

AAAI19 = sorted(p.stem for p in (CONF_DIR / "experiment" / "aaai19").glob("*.yaml"))
DATASETS = sorted(p.stem for p in (CONF_DIR / "data").glob("[!_]*.yaml"))


def test_every_table2_cell_and_ablation_has_a_recipe():
    expected = {
        f"{d}_{m}"
        for d in ("faceforensics", "vw300", "caltech")
        for m in ("cn3d", "combcn", "cn2d")
    }
    expected |= {
        "vw300_v1_cn3d",
        "vw300_v1_combcn",
        "vw300_v2_cn3d",
        "vw300_v2_combcn",
        "vw300_t1_combcn",
        "vw300_t2_combcn",
    }
    assert expected <= set(AAAI19)


@pytest.mark.parametrize("name", AAAI19)
def test_aaai19_recipe_keeps_paper_settings(name, tmp_path):
    cfg = compose_config("train", [f"experiment=aaai19/{name}", f"pretrain_dir={tmp_path}"])
    dataset, method = name.split("_")[0], name.rsplit("_", 1)[1]
    assert cfg.data.name == dataset and cfg.model.method == method
    assert cfg.data.clip_len == 32 and list(cfg.data.size) == [128, 128]
    assert cfg.model.lr == 1e-3 and cfg.model.alpha == 1.0
    assert cfg.trainer.max_steps == 100000
    assert cfg.model.ratio == (4 if "_v1_" in name else 2)
    assert cfg.model.temporal_stride == ("_v2_" in name)
    assert cfg.model.freeze_cn3d == ("_t1_" in name)
    if method == "combcn" and "_t2_" not in name:
        stage1 = name.replace("_t1_", "_").replace("combcn", "cn3d")
        assert cfg.model.cn3d_ckpt == f"{tmp_path}/aaai19/{stage1}/checkpoints/last.ckpt"
    else:
        assert method != "combcn" or cfg.model.cn3d_ckpt is None


def write_pretrained(path: Path, **hparams) -> None:
    system = CompletionSystem(method="cn3d", **hparams)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": system.state_dict(), "hyper_parameters": dict(system.hparams)}, path)


@pytest.mark.parametrize("name", [n for n in AAAI19 if n.startswith("vw300") or "cn2d" in n])
def test_aaai19_recipe_runs_fast_dev_run(name, tmp_path, data_dir):
    """Ablations + one of each method; data swapped for tiny synthetic clips."""
    for stage1 in ("vw300_cn3d", "vw300_v1_cn3d", "vw300_v2_cn3d"):
        ratio = 4 if "v1" in stage1 else 2
        write_pretrained(
            tmp_path / "pre" / "aaai19" / stage1 / "checkpoints" / "last.ckpt",
            ratio=ratio,
            temporal_stride="v2" in stage1,
        )
    cfg = compose_config(
        "train",
        [
            f"experiment=aaai19/{name}",
            "data=synthetic",
            "trainer=cpu",
            "logger=none",
            "debug=fast_dev_run",
            f"paths.data_dir={data_dir}",
            f"pretrain_dir={tmp_path}/pre",
            *TINY,
        ],
        output_dir=tmp_path / "run",
    )
    result = train(cfg)
    assert result["method"] == cfg.model.method
    assert torch.isfinite(torch.tensor(result["train/loss"]))


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_dataset_config_composes(dataset):
    cfg = compose_config("train", [f"data={dataset}"])
    assert cfg.data.name and cfg.data.clip_len == 32 and "_target_" in cfg.data


@pytest.mark.parametrize("config", ["train", "eval", "prepare", "inpaint"])
def test_entry_point_configs_compose(config):
    cfg = compose_config(config, [])
    assert cfg.paths.data_dir.endswith("data")
    assert cfg.get("seed", 1234) == 1234


@pytest.mark.parametrize("sweep", ["quickstart", "aaai19_table2", "aaai19_ablation"])
def test_sweep_stages_name_existing_recipes(sweep):
    cfg = compose_config("train", [f"sweep={sweep}"])
    for stage in ("pretrain", "joint"):
        for key, values in cfg.stages[stage].items():
            if key in ("experiment", "model"):
                for value in str(values).split(","):
                    assert (CONF_DIR / key / f"{value}.yaml").is_file(), value
            else:  # a plain override: it must name an existing key
                assert OmegaConf.select(cfg, key) is not None, key


def test_quickstart_settings():
    """make train: the shimmer scene, a new hole in every frame with the paper's sides
    (37.5-50% of the frame), the paper's model settings but weight decay, and the same step
    count for CombCN and the 2DCN."""
    cfg = compose_config("train", ["sweep=quickstart"])
    assert cfg.data.adapter.scene == "shimmer"
    assert cfg.data.mask._target_.endswith("BoxMask") and cfg.data.mask.per_frame is True
    assert (cfg.data.clip_len, list(cfg.data.size)) == (4, [32, 32])
    assert cfg.model.ratio == 2 and cfg.model.lr == 1e-3 and cfg.model.weight_decay == 0.0
    assert cfg.model.guide_init == "default" and cfg.model.guide_paste_known is False
    assert cfg.stages.joint.model == "combcn,cn2d" and "schedule.max_steps" not in cfg.stages.joint
    assert (cfg.data.mask.min_side, cfg.data.mask.max_side) == (0.375, 0.5)
    assert cfg.schedule.max_steps == 200 and cfg.pretrain_steps == 200
    assert cfg.model.lr_schedule == "cosine"


def config_names(group: str) -> set[str]:
    return {path.stem for path in (CONF_DIR / group).glob("*.yaml")}


def test_method_table_names_every_model_and_method_config():
    assert config_names("model") == config_names("method") == set(models.METHODS)


@pytest.mark.parametrize("name", sorted(models.METHODS))
def test_model_config_builds_the_tables_system(name):
    model = compose_config("inpaint", [f"method={name}", "input=x", "mask=y"]).model
    row = models.METHODS[name]
    assert model.method == name and model._target_ == row.system
    assert issubclass(row.system_class(), torch.nn.Module)


@pytest.mark.parametrize("schedule", sorted(config_names("schedule")))
def test_a_schedule_holds_step_counts_only(schedule):
    """Every value of a schedule is a number of steps (or of validation batches), no method
    option; no config reads the schedule group through ``oc.select``."""
    counts = OmegaConf.load(CONF_DIR / "schedule" / f"{schedule}.yaml")
    values = {k: v for k, v in counts.items() if k != "defaults"}
    assert values and all(type(v) in (int, float) for v in values.values()), values
    for path in CONF_DIR.rglob("*.yaml"):
        assert "oc.select:schedule" not in path.read_text(), path


def test_schedule_fast_shortens_the_papers_internal_fit_without_changing_its_shape():
    """Same iterations per window, window sampling, window size and intervals as
    schedule=paper; only the number of epochs, windows per epoch and DIP's count are cut."""
    fast, paper = (
        compose_config("inpaint", ["method=dip_vid_flow", f"schedule={name}", "input=x", "mask=y"])
        for name in ("fast", "paper")
    )
    same = ("iters_per_batch", "epoch_mode", "middle_batch", "batch_frames", "intervals", "lr")
    for key in same:
        assert fast.model.fit[key] == paper.model.fit[key], key
    assert fast.model.fit.iters_per_batch == 100
    cut = ("epochs", "batches_per_epoch", "dip_iters")
    assert all(fast.model.fit[k] <= paper.model.fit[k] for k in cut)
    windows = fast.model.fit.epochs * (fast.model.fit.batches_per_epoch + 1)
    assert windows * fast.model.fit.iters_per_batch == 2000
