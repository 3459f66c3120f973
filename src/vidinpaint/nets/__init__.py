"""Pure nn.Module architectures: AAAI'19 3DCN / CombCN / 2DCN and the ICCV'19 skip net."""

from vidinpaint.nets.cn3d import CN3D
from vidinpaint.nets.combcn import CombCN, cn2d
from vidinpaint.nets.skipnet import SkipEncoderDecoder, make_noise

__all__ = ["CN3D", "CombCN", "SkipEncoderDecoder", "cn2d", "make_noise"]
