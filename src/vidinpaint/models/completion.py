"""External learning (Wang et al., AAAI'19): 3DCN pre-training, CombCN joint training, 2DCN.

One system serves the three methods of Table 2 (``method``):

- ``cn3d``: the 3DCN alone on the F x H/r x W/r clip, eq. (1);
- ``combcn``: CombCN guided by the 3DCN, trained jointly, eq. (3) = eq. (1) + alpha eq. (2);
  the 3DCN comes from a pre-training checkpoint (``cn3d_ckpt``), fine-tuned by default,
  frozen with ``freeze_cn3d`` (ablation T-1), from scratch without a checkpoint (T-2);
- ``cn2d``: the 2DCN baseline (CombCN without guidance), eq. (2).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidinpaint import evaluation
from vidinpaint.checkpoints import read_checkpoint
from vidinpaint.errors import check_choice
from vidinpaint.inference import sliding_window
from vidinpaint.losses import framewise_masked_l1, masked_l1
from vidinpaint.metrics import l1_hole
from vidinpaint.models import TRAINED, names, speed
from vidinpaint.nets.cn3d import CN3D
from vidinpaint.nets.combcn import CombCN

log = logging.getLogger(__name__)

METHODS = names(TRAINED)
GUIDE_INITS = ("default", "zero")
LR_SCHEDULES = ("constant", "cosine")


class CompletionSystem(L.LightningModule):
    """Trains and applies 3DCN, CombCN or 2DCN on batches of ``B,T,3,H,W`` clips.

    Args:
        method: ``cn3d``, ``combcn`` or ``cn2d``.
        ratio: 3DCN down-sampling rate r (2 in the paper, 4 for ablation V-1).
        temporal_stride: 3DCN strides in time too (ablation V-2).
        lr: Adam learning rate.
        lr_schedule: ``constant`` (the paper's) or ``cosine`` (decayed to 0 at max_steps).
        weight_decay: L2 weight decay (the paper's "regression weight") on convolution kernels.
        decay_norm_and_bias: also decay BatchNorm scales/shifts and biases (every parameter).
        alpha: weight of L_CombCN in eq. (3).
        cn3d_ckpt: pre-trained 3DCN (a ``method=cn3d`` checkpoint) for ``combcn``.
        freeze_cn3d: keep the 3DCN fixed while CombCN trains (ablation T-1).
        guide_paste_known: paste the known low-resolution pixels into the 3DCN frame before
            the guidance convolutions (False: the raw 3DCN output, as in the paper).
        guide_init: ``default`` (PyTorch's initialisation, the paper gives none) or ``zero``
            (guidance convolutions start at zero: CombCN starts as the 2DCN).
        flow_method, raft_weights: optical flow behind the ``ewarp`` metric.
        channels_last, compile, compile_mode: speed switches applied in ``configure_model``
            (``compile_mode`` is ``torch.compile``'s ``mode``, e.g. ``reduce-overhead``);
            ``channels_last="auto"``: a channels-last CombCN on the CPU
            (:func:`speed.resolve_channels_last` for the trainer's device).
        fused_adam: one fused Adam kernel over all parameters.
        mean_pixel: RGB fill value of holes; replaced by the training set's at fit start.
    """

    def __init__(
        self,
        method: str = "combcn",
        ratio: int = 2,
        temporal_stride: bool = False,
        lr: float = 1e-3,
        lr_schedule: str = "constant",
        weight_decay: float = 0.01,
        decay_norm_and_bias: bool = False,
        alpha: float = 1.0,
        cn3d_ckpt: str | None = None,
        freeze_cn3d: bool = False,
        guide_paste_known: bool = False,
        guide_init: str = "default",
        flow_method: str = "dis",
        raft_weights: str | None = None,
        channels_last: bool | str = False,
        compile: bool = False,
        compile_mode: str | None = None,
        fused_adam: bool = True,
        mean_pixel: tuple[float, float, float] = (0.5, 0.5, 0.5),
    ) -> None:
        super().__init__()
        check_choice("method", method, METHODS)
        if ratio not in (2, 4):
            raise ValueError(f"ratio (3DCN down-sampling r) must be 2 or 4, got {ratio}")
        if freeze_cn3d and method != "combcn":
            raise ValueError("freeze_cn3d only applies to method=combcn")
        check_choice("lr_schedule", lr_schedule, LR_SCHEDULES)
        check_choice("guide_init", guide_init, GUIDE_INITS)
        self.save_hyperparameters()
        self.method = method
        # vidinpaint-eval sets a list here to collect one dashboard row per validated clip
        self.clip_rows: list[dict] | None = None
        self.ratio = ratio
        self.cn3d = CN3D(temporal_stride=temporal_stride) if method != "cn2d" else None
        self.combcn = (
            CombCN(guided=method == "combcn", guide_scale=ratio, zero_guide=guide_init == "zero")
            if method != "cn3d"
            else None
        )
        self.register_buffer("mean_pixel", torch.tensor(mean_pixel, dtype=torch.float32))

    # ---------------------------------------------------------------- set-up
    def setup(self, stage: str) -> None:
        """Takes the training set's mean pixel and loads the pre-trained 3DCN (a resumed
        checkpoint is restored after this and overrides both)."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        if stage == "fit" and datamodule is not None and hasattr(datamodule, "mean_pixel"):
            self.mean_pixel.copy_(torch.tensor(datamodule.mean_pixel, dtype=torch.float32))
        if stage == "fit" and self.method == "combcn":
            if self.hparams.cn3d_ckpt:
                self.load_cn3d(self.hparams.cn3d_ckpt)
            else:
                log.info("combcn: no model.cn3d_ckpt given, 3DCN trains from scratch (T-2)")
        if self.hparams.freeze_cn3d:
            self.cn3d.requires_grad_(False)

    def load_cn3d(self, path: str | Path) -> None:
        """Loads the 3DCN weights of a ``method=cn3d`` (or ``combcn``) checkpoint."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"3DCN checkpoint not found: {path} (pre-train with model=cn3d, or drop "
                "model.cn3d_ckpt to train the 3DCN from scratch)"
            )
        ckpt = read_checkpoint(path, "3DCN checkpoint (model.cn3d_ckpt)")
        hp = ckpt.get("hyper_parameters", {})
        for key in ("ratio", "temporal_stride"):
            if key in hp and hp[key] != self.hparams[key]:
                raise ValueError(
                    f"{path}: 3DCN was trained with {key}={hp[key]}, this run uses "
                    f"model.{key}={self.hparams[key]}"
                )
        weights = {k[5:]: v for k, v in ckpt["state_dict"].items() if k.startswith("cn3d.")}
        if not weights:
            raise ValueError(f"{path} holds no 3DCN weights (method={hp.get('method')})")
        self.cn3d.load_state_dict(weights)
        log.info("loaded pre-trained 3DCN from %s (step %s)", path, ckpt.get("global_step"))

    def configure_model(self) -> None:
        """Applies the speed switches for the trainer's device (the system's without a
        trainer): ``channels_last`` (``auto``: a channels-last CombCN on the CPU) and
        ``compile``; logs the CPU trainer's precision."""
        device, channels_last = self.device, self.hparams.channels_last
        if self._trainer is not None:
            device = self.trainer.strategy.root_device
            if device.type == "cpu":
                log.info(
                    "%s: precision %s on the CPU%s (trainer=cpu: bf16-mixed where the CPU has "
                    "bf16 units; trainer.precision=32-true turns it off)",
                    self.method,
                    self.trainer.precision,
                    ", the 3DCN's first layer in fp32" if self.cn3d is not None else "",
                )
        for net, dims, fmt in (
            (self.combcn, 2, torch.channels_last),
            (self.cn3d, 3, torch.channels_last_3d),
        ):
            if net is not None and speed.resolve_channels_last(channels_last, device, dims):
                net.to(memory_format=fmt)
        if self.hparams.compile:
            for net in (self.combcn, self.cn3d):
                if net is not None:
                    net.compile(mode=self.hparams.compile_mode)

    def train(self, mode: bool = True) -> CompletionSystem:
        """Keeps a frozen 3DCN in eval mode (its BatchNorm statistics stay fixed too)."""
        super().train(mode)
        if self.hparams.freeze_cn3d:
            self.cn3d.eval()
        return self

    def parameter_groups(self) -> list[dict]:
        """Optimiser groups: ``weight_decay`` on convolution kernels (the filters an L2
        regulariser is meant for), none on BatchNorm scales/shifts and biases, unless
        ``decay_norm_and_bias``. Frozen parameters are left out."""
        decayed, plain = [], []
        for module in self.modules():
            for name, param in module.named_parameters(recurse=False):
                if not param.requires_grad:
                    continue
                kernel = isinstance(module, nn.modules.conv._ConvNd) and name == "weight"
                (decayed if kernel or self.hparams.decay_norm_and_bias else plain).append(param)
        groups = [
            {"params": decayed, "weight_decay": self.hparams.weight_decay},
            {"params": plain, "weight_decay": 0.0},
        ]
        return [g for g in groups if g["params"]]

    def configure_optimizers(self) -> torch.optim.Optimizer | dict:
        """Adam at ``lr`` (the paper's constant rate), or with ``lr_schedule=cosine`` decayed
        along a cosine to 0 at the trainer's ``max_steps``, stepped every optimiser step."""
        optimizer = torch.optim.Adam(
            self.parameter_groups(), lr=self.hparams.lr, fused=self.hparams.fused_adam
        )
        if self.hparams.lr_schedule == "constant":
            return optimizer
        if self.trainer.max_steps <= 0:
            raise ValueError("lr_schedule=cosine needs a step budget: set schedule.max_steps")
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, self.trainer.max_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": cosine, "interval": "step"}}

    @property
    def protocol(self) -> dict[str, object]:
        """The evaluation/training protocol choices of this run, for ``metrics.json``."""
        keys = (
            "weight_decay",
            "decay_norm_and_bias",
            "guide_paste_known",
            "guide_init",
            "lr_schedule",
        )
        return {f"protocol/{k}": self.hparams[k] for k in keys} | {
            "protocol/l1_hole_3dcn": "255 x eq. (1) at H/r (val/l1_hole_3dcn_low)"
        }

    # ---------------------------------------------------------------- forward
    def fill(self, video: Tensor, mask: Tensor) -> Tensor:
        """Network input: ``video`` with hole pixels replaced by the mean pixel. B,T,3,H,W."""
        return video * (1 - mask) + self.mean_pixel.view(1, 1, 3, 1, 1) * mask

    def downsample(self, masked: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """The 3DCN's view: area-averaged frames, a pixel is a hole if any source pixel is.

        Args: masked ``B,T,3,H,W`` (holes filled), mask ``B,T,1,H,W``.
        Returns: masked and mask at ``H/r, W/r``.
        """
        b, t, _, h, w = masked.shape
        r = self.ratio
        frames = F.avg_pool2d(masked.flatten(0, 1), r).unflatten(0, (b, t))
        mask_low = F.max_pool2d(mask.flatten(0, 1), r).unflatten(0, (b, t))
        return self.fill(frames, mask_low), mask_low

    def forward(self, masked: Tensor, mask: Tensor) -> dict[str, Tensor]:
        """Completes a clip.

        Args: masked ``B,T,3,H,W`` (holes = mean pixel), mask ``B,T,1,H,W`` (1 = hole).
        Returns: ``cn3d`` (``B,T,3,H/r,W/r``; cn3d/combcn), ``cn3d_full`` (3DCN up-sampled to
        ``H,W``), ``combcn`` (``B,T,3,H,W``; combcn/cn2d), ``mask_low``.
        """
        if masked.dim() != 5 or masked.shape[2] != 3 or mask.shape[2] != 1:
            raise ValueError(
                f"expected masked B,T,3,H,W and mask B,T,1,H,W, got {tuple(masked.shape)} "
                f"and {tuple(mask.shape)}"
            )
        out: dict[str, Tensor] = {}
        guide = None
        if self.cn3d is not None:
            masked_low, mask_low = self.downsample(masked, mask)
            with speed.thin_conv3d_in_fp32(self.cn3d, masked.device):
                low = self.cn3d(masked_low.float(), mask_low.float())
            out["cn3d"], out["mask_low"] = low, mask_low
            b, t = low.shape[:2]
            out["cn3d_full"] = F.interpolate(
                low.flatten(0, 1), size=masked.shape[-2:], mode="bilinear", align_corners=False
            ).unflatten(0, (b, t))
            guide = low
            if self.hparams.guide_paste_known:
                guide = low * mask_low + masked_low * (1 - mask_low)
        if self.combcn is not None:
            out["combcn"] = self.combcn(masked, mask, guide if self.method == "combcn" else None)
        return out

    def prediction(self, out: dict[str, Tensor]) -> Tensor:
        """The method's full-resolution output (3DCN's is up-sampled bilinearly)."""
        return out["cn3d_full"] if self.method == "cn3d" else out["combcn"]

    def losses(self, out: dict[str, Tensor], video: Tensor, mask: Tensor) -> dict[str, Tensor]:
        """eq. (1) ``loss_3dcn``, eq. (2) ``loss_combcn`` and eq. (3) ``loss``."""
        losses = {}
        if "cn3d" in out:
            video_low = F.avg_pool2d(video.flatten(0, 1), self.ratio).unflatten(0, video.shape[:2])
            losses["loss_3dcn"] = masked_l1(out["cn3d"], video_low, out["mask_low"])
        if "combcn" in out:
            losses["loss_combcn"] = framewise_masked_l1(out["combcn"], video, mask)
        losses["loss"] = losses.get("loss_3dcn", 0) + self.hparams.alpha * losses.get(
            "loss_combcn", 0
        )
        return losses

    # ---------------------------------------------------------------- steps
    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        out = self(batch["masked"], batch["mask"])
        losses = self.losses(out, batch["video"], batch["mask"])
        bs = batch["video"].shape[0]
        # for the loggers only: a prog_bar value is copied to the host every step (a sync);
        # callbacks.ProgressBar shows these every log_every_n_steps steps
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, batch_size=bs)
        return losses["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def _evaluate(self, batch: dict, stage: str) -> None:
        video, mask = batch["video"], batch["mask"]
        begin = time.perf_counter()
        out = self(batch["masked"], mask)
        pred = self.prediction(out)
        collect = self.clip_rows is not None
        if collect and pred.is_cuda:
            torch.cuda.synchronize(pred.device)
        seconds = (time.perf_counter() - begin) / video.shape[0]
        values = {k: v.detach() for k, v in self.losses(out, video, mask).items()}
        values.update(evaluation.score_clips(pred, video, mask))
        # ewarp per clip (the batch's is their mean; the rows below show each)
        ewarps, flow_method = None, self.hparams.flow_method
        if flow_method and video.shape[1] > 1:
            done = evaluation.composite(pred.float(), video.float(), mask.float())
            ewarps = evaluation.clip_ewarps(done, video, flow_method, self.hparams.raft_weights)
            values["ewarp"] = torch.tensor(sum(ewarps) / len(ewarps))
        if collect:
            names = [evaluation.clip_name(*c) for c in zip(batch["path"], batch["start"])]
            self.clip_rows += evaluation.clip_rows(
                pred, video, mask, names, self.method, seconds, ewarps
            )
        # the simplest baseline on the same holes: the network input, holes = the mean pixel
        values["l1_hole_fill"] = l1_hole(batch["masked"], video, mask)
        if "loss_3dcn" in values:  # Table 2's 3DCN unit: eq. (1) at H/r, in [0,255]
            values["l1_hole_3dcn_low"] = 255.0 * values["loss_3dcn"]
        if self.method == "combcn":  # the 3DCN of this joint run, up-sampled to H x W
            up = evaluation.score_clips(out["cn3d_full"], video, mask)
            values.update({f"{k}_3dcn": v for k, v in up.items()})
        self.log_dict(
            {f"{stage}/{k}": v for k, v in values.items()},
            batch_size=video.shape[0],
            sync_dist=True,
            prog_bar=stage == "val",
        )

    # ---------------------------------------------------------------- users
    @torch.no_grad()
    def panel_columns(self, batch: dict) -> dict[str, Tensor]:
        """Named ``B,T,3,H,W`` videos for sample panels: input | outputs | target."""
        out = self(batch["masked"], batch["mask"])
        columns = {"input": batch["masked"]}
        if "cn3d_full" in out:
            columns["3dcn"] = out["cn3d_full"]
        if "combcn" in out:
            columns[self.method] = out["combcn"]
        columns["target"] = batch["video"]
        return {k: v.clamp(0, 1) for k, v in columns.items()}

    @torch.no_grad()
    def inpaint(
        self,
        video: Tensor,
        mask: Tensor,
        progress: bool = True,
        clip_len: int = 32,
        overlap: int = 8,
    ) -> Tensor:
        """Inpaints a whole video with overlapping ``clip_len`` windows.

        Args: video ``T,3,H,W`` in [0,1], mask ``T,1,H,W`` (1 = hole), any T, H, W.
        Returns: ``T,3,H,W`` with the known pixels of ``video`` unchanged.
        """
        was_training = self.training
        self.eval()
        multiple = 4 * self.ratio

        def complete(clip: Tensor, clip_mask: Tensor) -> Tensor:
            out = self(self.fill(clip, clip_mask), clip_mask)
            return self.prediction(out)

        result = sliding_window(
            complete,
            video,
            mask,
            clip_len=clip_len,
            overlap=overlap,
            spatial_multiple=multiple,
            temporal_multiple=4 if self.hparams.temporal_stride else 1,
            device=self.device,
            progress=progress,
        )
        self.train(was_training)
        return result
