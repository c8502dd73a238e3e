"""The occlusion model: a small U-Net that marks what is in front of an aligned face.

Sized for the live loop's budget (about 1 ms a face on one CPU core at 64 px): the encoder starts at half
resolution (a strided first convolution) and goes down to 1/16; the decoder comes back up with skip
connections to half resolution, and a thin full-resolution branch (``full`` channels straight from the
image) restores the fine detail that thin glasses frames and hair strands need. 3x3 convolutions, batch
norm (folded into the convolutions at export), ReLU; the output is a probability per pixel.

``OcclusionExport`` wraps it for ONNX: uint8 BGR NHWC crops in (what the live loop has), (N, R, R)
probabilities out, so the live loop converts nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class OcclusionNetConfig:
    """width: channels at half resolution (x2, x4, x4 further down); full: channels of the full-resolution
    branch; resolution: side of the aligned crop in pixels (a multiple of 16)."""

    width: int = 16
    full: int = 8
    resolution: int = 64

    def validate(self) -> OcclusionNetConfig:
        if self.resolution % 16 or self.resolution < 32:
            raise ValueError(f"resolution must be a multiple of 16, at least 32; got {self.resolution}")
        if self.width < 4 or self.full < 1:
            raise ValueError(f"width must be >= 4 and full >= 1; got {self.width}, {self.full}")
        return self

    def as_dict(self) -> dict:
        return asdict(self)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class OcclusionNet(nn.Module):
    """(N, 3, R, R) float in [0, 1] (BGR) -> (N, 1, R, R) logits."""

    def __init__(self, config: OcclusionNetConfig | None = None) -> None:
        super().__init__()
        self.config = c = (config or OcclusionNetConfig()).validate()
        w = c.width
        self.fine = _conv(3, c.full)
        self.down1 = nn.Sequential(_conv(3, w, 2), _conv(w, w))
        self.down2 = nn.Sequential(_conv(w, 2 * w, 2), _conv(2 * w, 2 * w))
        self.down3 = nn.Sequential(_conv(2 * w, 4 * w, 2), _conv(4 * w, 4 * w))
        self.down4 = nn.Sequential(_conv(4 * w, 4 * w, 2), _conv(4 * w, 4 * w))
        self.up3 = _conv(8 * w, 4 * w)
        self.up2 = _conv(6 * w, 2 * w)
        self.up1 = _conv(3 * w, w)
        self.up0 = _conv(w + c.full, c.full)
        self.head = nn.Conv2d(c.full, 1, 1)

    @staticmethod
    def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f1 = self.down1(x)
        f2 = self.down2(f1)
        f3 = self.down3(f2)
        f4 = self.down4(f3)
        y = self.up3(torch.cat([self._up(f4, f3), f3], 1))
        y = self.up2(torch.cat([self._up(y, f2), f2], 1))
        y = self.up1(torch.cat([self._up(y, f1), f1], 1))
        y = self.up0(torch.cat([self._up(y, x), self.fine(x)], 1))
        return self.head(y)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


class OcclusionExport(nn.Module):
    """The exported graph: (N, R, R, 3) uint8 BGR -> (N, R, R) float32 occluder probability."""

    def __init__(self, net: OcclusionNet) -> None:
        super().__init__()
        self.net = net.eval()

    def forward(self, face: torch.Tensor) -> torch.Tensor:
        x = face.permute(0, 3, 1, 2).float() * (1.0 / 255.0)
        return torch.sigmoid(self.net(x))[:, 0]
