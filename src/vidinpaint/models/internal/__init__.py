"""Internal learning (Zhang et al., ICCV'19): a network trained on the one video it inpaints.

One system (``system.InternalLearningSystem``) serves the four methods of the paper:

- ``dip``: Deep Image Prior per frame: a new network for every frame, ``fit.dip_iters``
  iterations, keeping the output of the iterate with the lowest known-region loss
  (``dip.BestIterates``, scored every ``fit.dip_check_every`` iterations);
- ``dip_vid``: one 2D network for the whole video, frames as a batch, L_r (+ L_p);
- ``dip_vid_3dcn``: the same with the 3D network (a window is one 1x1xNxHxW clip);
- ``dip_vid_flow``: the 2D network with a 12-channel flow head (intervals 1, 3, 5, forward and
  backward), L = L_r + 0.1 L_f + L_c + 0.01 L_p.

The input is fixed noise (one map per frame, ``nets.skipnet.make_noise``); the holes are filled
with each frame's mean known colour before anything sees the video. ``fit_loop`` fits the
network on the video's windows (``windows``: the sampler, the flow targets, the dataset; the
fit's state can be written every few iterations and resumed, ``FitCheckpoint``), then each
frame is generated from the stride-1 window centred on it and the known pixels are pasted
back. As in the public code, BatchNorm stays in training mode for that generation (batch
statistics of the window). Flows of the input video are estimated once per fit
(``flow.video_flows``: DIS, or RAFT with ``flow.raft_weights``) and divided by their
per-interval maximum |flow| (``flow.normalize``). Settings: ``options``.
"""

from vidinpaint.models.internal.fit_loop import SIZE_MULTIPLE, FitCheckpoint
from vidinpaint.models.internal.options import FitOptions, FlowOptions, LossWeights, SpeedOptions
from vidinpaint.models.internal.system import METHODS, InternalLearningSystem

__all__ = [
    "METHODS",
    "SIZE_MULTIPLE",
    "FitCheckpoint",
    "FitOptions",
    "FlowOptions",
    "InternalLearningSystem",
    "LossWeights",
    "SpeedOptions",
]
