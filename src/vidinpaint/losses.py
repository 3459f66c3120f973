"""Training losses.

AAAI'19 (3DCN + CombCN): `masked_l1` (eq. 1) and `framewise_masked_l1` (eq. 2) on clips
(B, T, C, H, W) with hole masks (B, T, 1, H, W), 1 = hole.

ICCV'19 internal learning: `reconstruction_loss`, `flow_loss`, `consistency_loss`,
`PerceptualLoss` on frame batches (N, C, H, W). They follow the public code
(Haotianz94/IL_video_inpainting): each is a mean over ALL elements of the masked tensor
(torch.nn.MSELoss on masked inputs), not a sum divided by the mask area.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from kornia.morphology import dilation
from torch import Tensor, nn

from vidinpaint.errors import check_choice
from vidinpaint.flow import MissingWeightsError, backward_warp

__all__ = [
    "PERCEPTUAL_INPUTS",
    "MissingWeightsError",
    "PerceptualLoss",
    "consistency_loss",
    "flow_loss",
    "framewise_masked_l1",
    "masked_l1",
    "reconstruction_loss",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PERCEPTUAL_INPUTS = ("imagenet", "code")
"""What VGG16 sees: ``imagenet``: ImageNet-normalised RGB (what its weights were trained on);
``code``: BGR in [0, 1], not normalised (the public code feeds its OpenCV frames as they are)."""


def _check_clip(pred: Tensor, target: Tensor, mask: Tensor) -> None:
    if pred.ndim != 5 or pred.shape != target.shape:
        raise ValueError(
            f"pred/target: expected equal (B,T,C,H,W), got {tuple(pred.shape)} "
            f"and {tuple(target.shape)}"
        )
    expected = (*pred.shape[:2], 1, *pred.shape[3:])
    if tuple(mask.shape) != expected:
        raise ValueError(f"mask: expected {expected}, got {tuple(mask.shape)}")


def _check_frames(pred: Tensor, target: Tensor, mask: Tensor, mask_name: str) -> None:
    if pred.ndim != 4 or pred.shape != target.shape:
        raise ValueError(
            f"expected equal (N,C,H,W) inputs, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    expected = (pred.shape[0], 1, *pred.shape[2:])
    if tuple(mask.shape) != expected:
        raise ValueError(f"{mask_name}: expected {expected}, got {tuple(mask.shape)}")


def masked_l1(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """AAAI'19 eq. 1: ||M (.) (G - V)||_1 / ||M||_1 per clip, averaged over the batch.

    pred, target: (B, T, C, H, W); mask: (B, T, 1, H, W), 1 = hole. The denominator counts hole
    pixels times channels, so the value is the mean absolute error per hole pixel and channel
    (in [0, 1] units; x255 gives the paper's unit). A clip without holes contributes 0.
    """
    _check_clip(pred, target, mask)
    channels = pred.shape[2]
    error = ((pred - target).abs() * mask).sum(dim=(1, 2, 3, 4))
    area = mask.sum(dim=(1, 2, 3, 4)) * channels
    return (error / area.clamp(min=1)).mean()


def framewise_masked_l1(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """AAAI'19 eq. 2: sum_k ||M^k (.) (G_k - V_k)||_1 / (F ||M^k||_1), averaged over the batch.

    pred, target: (B, T, C, H, W); mask: (B, T, 1, H, W), 1 = hole. Each frame is normalised by
    its own hole area (pixels x channels), then frames are averaged (the 1/F) and clips averaged.
    A frame without holes contributes 0 but still counts in F.
    """
    _check_clip(pred, target, mask)
    channels = pred.shape[2]
    error = ((pred - target).abs() * mask).sum(dim=(2, 3, 4))
    area = mask.sum(dim=(2, 3, 4)) * channels
    return (error / area.clamp(min=1)).mean()


def reconstruction_loss(pred: Tensor, target: Tensor, known: Tensor) -> Tensor:
    """Internal learning L_r: mean over all elements of ((pred - target) * known)^2.

    pred, target: (N, C, H, W); known: (N, 1, H, W), 1 = known pixel. Code semantics: divided by
    N*C*H*W, not by the known area.
    """
    _check_frames(pred, target, known, "known")
    return ((pred - target) * known).square().mean()


def flow_loss(pred_flow: Tensor, target_flow: Tensor, valid: Tensor) -> Tensor:
    """Internal learning L_f: mean over all elements of ((pred_flow - target_flow) * valid)^2.

    pred_flow, target_flow: (N, 2, H, W); valid: (N, 1, H, W), 1 where the estimated flow is
    trusted (both endpoints known and the forward-backward check passes). Code semantics: divided
    by N*2*H*W. The code feeds flows divided by a per-interval maximum |flow|; pass flows in the
    units the generator predicts.
    """
    _check_frames(pred_flow, target_flow, valid, "valid")
    return ((pred_flow - target_flow) * valid).square().mean()


def consistency_loss(pred_i: Tensor, pred_j: Tensor, flow_ij: Tensor, region: Tensor) -> Tensor:
    """Internal learning L_c: frame j warped back to i with the generated flow vs frame i.

    pred_i, pred_j: (N, 3, H, W) generated frames i and j; flow_ij: (N, 2, H, W) generated pixel
    flow from i to j; region: (N, 1, H, W), 1 inside the union of the holes of i and the warped
    hole of j. Returns mean over all elements of ((warp(pred_j, flow_ij) - sg(pred_i)) * m)^2
    with m = region * inside (the sample lands within frame j). Frame i is detached
    (stop-gradient) as in the code, so gradients reach pred_j and flow_ij only.
    """
    _check_frames(pred_i, pred_j, region, "region")
    warped, inside = backward_warp(pred_j, flow_ij)
    weight = region * inside
    return ((warped - pred_i.detach()) * weight).square().mean()


# Indices in torchvision's vgg16().features: convs, ReLUs at relu1_2 / relu2_2 / relu3_3.
VGG16_RELU_LAYERS = {3: "relu1_2", 8: "relu2_2", 15: "relu3_3"}
_VGG16_PREFIX_LEN = 16


def _missing_vgg_message(weights_path: str | None) -> str:
    return (
        f"VGG16 weights for the perceptual loss not found at {weights_path!r}: download "
        "torchvision's vgg16-397923af.pth on a machine with internet, copy it here and set "
        "model.loss.vgg_weights=PATH, or set model.loss.perceptual=0 to turn the loss off"
    )


def load_vgg16_features(weights_path: str | None) -> nn.Sequential:
    """torchvision VGG16 `features[:16]` (up to relu3_3) with weights from a local file.

    The file is a torchvision state dict of the full vgg16 (keys `features.*`, `classifier.*`)
    or of its features only (keys `features.*` or bare `0.weight`, ...). Raises
    MissingWeightsError when the path is None or no file; ValueError when keys are missing.
    """
    from torchvision.models.vgg import cfgs, make_layers

    if weights_path is None or not Path(weights_path).is_file():
        raise MissingWeightsError(_missing_vgg_message(weights_path))
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"VGG16 weights {weights_path}: expected a state dict, got {type(state)}")
    features = make_layers(cfgs["D"])[:_VGG16_PREFIX_LEN]  # = vgg16().features[:16], no classifier
    stripped = {
        key.removeprefix("features."): value
        for key, value in state.items()
        if not key.startswith("classifier.")
    }
    wanted = features.state_dict().keys()
    missing = [key for key in wanted if key not in stripped]
    if missing:
        raise ValueError(f"VGG16 weights {weights_path}: missing keys {missing}")
    features.load_state_dict({key: stripped[key] for key in wanted})
    return features.eval().requires_grad_(False)


class PerceptualLoss(nn.Module):
    """Internal learning L_p: VGG16 relu1_2, relu2_2, relu3_3 feature differences on known regions.

    ``input_mode`` (``PERCEPTUAL_INPUTS``): VGG16's input for pred and target, ImageNet-normalised
    RGB (``imagenet``) or the public code's BGR in [0, 1] (``code``). The hole mask follows the
    network to each layer's resolution: a 3x3 dilation per conv (the conv's footprint; kornia,
    equal to a 3x3 stride-1 max-pool) and a 2x2 stride-2 max-pool per pooling layer, i.e. the
    code's all-ones "mask network" > 0. Per layer: mean over all elements of
    ((f(pred) - sg(f(target))) * known_l)^2; summed over the three layers (code semantics).
    Weights come only from `weights_path`.
    """

    def __init__(self, weights_path: str | None, input_mode: str = "imagenet") -> None:
        super().__init__()
        check_choice("perceptual input", input_mode, PERCEPTUAL_INPUTS)
        self.input_mode = input_mode
        self.features = load_vgg16_features(weights_path)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> PerceptualLoss:
        """Keep the frozen VGG in eval mode whatever the parent does."""
        super().train(mode)
        self.features.eval()
        return self

    def _features(self, images: Tensor) -> list[Tensor]:
        # code: RGB -> BGR, not normalised
        x = images.flip(1) if self.input_mode == "code" else (images - self.mean) / self.std
        outputs = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in VGG16_RELU_LAYERS:
                outputs.append(x)
        return outputs

    def layer_hole_masks(self, hole: Tensor) -> list[Tensor]:
        """Hole mask (N, 1, H, W) at relu1_2, relu2_2, relu3_3 resolution, grown by each layer."""
        outputs = []
        for index, layer in enumerate(self.features):
            if isinstance(layer, nn.Conv2d):
                hole = dilation(hole, hole.new_ones(3, 3))
            elif isinstance(layer, nn.MaxPool2d):
                hole = F.max_pool2d(hole, kernel_size=2, stride=2)
            if index in VGG16_RELU_LAYERS:
                outputs.append(hole)
        return outputs

    @torch.no_grad()
    def target_features(self, target: Tensor) -> list[Tensor]:
        """Features of fixed targets (N, 3, H, W), to compute once and pass to ``forward``."""
        return self._features(target)

    def forward(
        self,
        pred: Tensor,
        target: Tensor,
        known: Tensor,
        target_features: list[Tensor] | None = None,
    ) -> Tensor:
        """pred, target: (N, 3, H, W) in [0, 1]; known: (N, 1, H, W), 1 = known. Returns scalar.

        target_features: ``target_features(target)`` computed earlier (skips the target pass).
        """
        _check_frames(pred, target, known, "known")
        if pred.shape[1] != 3:
            raise ValueError(f"expected RGB (N,3,H,W), got {tuple(pred.shape)}")
        pred_features = self._features(pred)
        if target_features is None:
            target_features = self.target_features(target)
        masks = self.layer_hole_masks(1 - known.to(pred.dtype))
        loss = pred.new_zeros(())
        for fp, ft, hole in zip(pred_features, target_features, masks):
            loss = loss + ((fp - ft) * (1 - hole)).square().mean()
        return loss
