"""DF and LIAE autoencoders of the DeepFaceLab family, each decoder also predicting a face mask.

Topology (facts of DeepFaceLab's SAEHD, re-expressed in PyTorch):
- Encoder: four stride-2 downscales (5x5 conv, LeakyReLU 0.1) of widths e, 2e, 4e, 8e, flattened.
- Inter (DF): Dense(ae) -> Dense(r*r*ae) with r = R/16 -> Upscale(ae) (3x3 conv to 4x channels,
  LeakyReLU 0.1, depth-to-space). LIAE has two inters, inter_AB and inter_B, of width 2*ae each;
  the decoder reads their concatenation.
- Decoder: three Upscale + ResidualBlock stages of widths 8d, 4d, 2d, then a 1x1 conv to 3 channels
  and a sigmoid; a separate mask branch of widths 8m, 4m, 2m ends in a 1x1 conv to 1 channel.
- DF trains one decoder per identity (src, dst) on a shared encoder and inter; LIAE one decoder.

The ``lite`` preset keeps that shape but swaps every k x k convolution past the stem for a
depthwise-separable one (depthwise k x k + pointwise 1x1), narrows the widths and shrinks the dense
bottleneck, so the exported model runs in a few ms per 128 px face on a 2-core CPU.

Tensors inside are NCHW RGB-agnostic floats in [0, 1]; the exporter adds the NHWC/BGR contract.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

ARCHITECTURES = ("df", "liae")


@dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes the model's shape; stored in checkpoints and compared on resume."""

    preset: str = "lite"
    arch: str = "df"
    resolution: int = 128
    ae_dims: int = 256
    e_dims: int = 64
    d_dims: int = 64
    d_mask_dims: int = 22
    separable: bool = False
    last_res_block: bool = True  # the residual block at full resolution (lite drops it: most of its cost)
    prior: bool = False  # the src decoder also reads the reference prior (training.prior): a second input
    prior_dims: int = 8  # width of the prior's feature pyramid at full resolution (doubles per halving)
    mask_scale: int = 1  # masks made at R/mask_scale (1, 2 or 4) and upsampled (bilinear): a mask is smooth, and
    # the two mask branches' full- and half-resolution stages were a quarter of a prior model's CPU time

    def validate(self) -> ModelConfig:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.arch!r}; choose one of {', '.join(ARCHITECTURES)}")
        if not (64 <= self.resolution <= 512 and self.resolution % 16 == 0):
            raise ValueError(f"resolution must be a multiple of 16 between 64 and 512, got {self.resolution}")
        if self.prior and self.arch != "df":
            raise ValueError("the reference prior is built for the df architecture only")
        if self.mask_scale not in (1, 2, 4):
            raise ValueError(f"mask_scale must be 1, 2 or 4, got {self.mask_scale}")
        for name in ("ae_dims", "e_dims", "d_dims", "d_mask_dims", "prior_dims"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


# Named presets. ``df``/``liae``: DeepFaceLab's SAEHD defaults (ae 256, e 64, d 64, mask 22).
PRESETS: dict[str, ModelConfig] = {
    # lite: measured on a 2-core CPU at 128 px; ~190 M multiply-adds for the exported graph.
    "lite": ModelConfig(preset="lite", arch="df", ae_dims=128, e_dims=16, d_dims=12, d_mask_dims=4,
                        separable=True, last_res_block=False),
    "df": ModelConfig(preset="df", arch="df", ae_dims=256, e_dims=64, d_dims=64, d_mask_dims=22),
    "liae": ModelConfig(preset="liae", arch="liae", ae_dims=256, e_dims=64, d_dims=64, d_mask_dims=22),
    # prior: lite plus the reference prior (the target's reference face warped onto the input's mesh)
    "prior": ModelConfig(preset="prior", arch="df", ae_dims=128, e_dims=16, d_dims=12, d_mask_dims=4,
                         separable=True, last_res_block=False, prior=True, prior_dims=8),
    # prior_fast: prior with both masks made at a quarter of the resolution and a decoder of width 8 (ONNX Runtime,
    # 1 thread, 192 px, interleaved on the busy 2-core machine: 8.8 ms per face vs prior's 12.6); the base's model
    "prior_fast": ModelConfig(preset="prior_fast", arch="df", ae_dims=128, e_dims=16, d_dims=8, d_mask_dims=4,
                              separable=True, last_res_block=False, prior=True, prior_dims=8, mask_scale=4),
}


def make_config(preset: str, resolution: int, **overrides) -> ModelConfig:
    """The named preset at ``resolution`` with any non-None width overrides applied."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    changes = {k: v for k, v in overrides.items() if v is not None}
    return replace(PRESETS[preset], resolution=resolution, **changes).validate()


def conv(c_in: int, c_out: int, k: int, stride: int = 1, separable: bool = False) -> nn.Module:
    """k x k convolution with 'same' padding; depthwise k x k + pointwise 1x1 when ``separable``."""
    if not separable or k == 1:
        return nn.Conv2d(c_in, c_out, k, stride, k // 2)
    return nn.Sequential(nn.Conv2d(c_in, c_in, k, stride, k // 2, groups=c_in), nn.Conv2d(c_in, c_out, 1))


class Downscale(nn.Sequential):
    """Stride-2 convolution, LeakyReLU 0.1: (N, c_in, H, W) -> (N, c_out, H/2, W/2)."""

    def __init__(self, c_in: int, c_out: int, k: int = 5, separable: bool = False) -> None:
        super().__init__(conv(c_in, c_out, k, 2, separable), nn.LeakyReLU(0.1))


class Upscale(nn.Sequential):
    """(N, c_in, H, W) -> (N, c_out, 2H, 2W).

    Full: 3x3 conv to 4*c_out, LeakyReLU 0.1, depth-to-space (DeepFaceLab's). Separable: nearest
    2x upsampling, then depthwise 3x3 + pointwise to c_out, LeakyReLU 0.1 — the same pointwise
    multiply-adds, but ONNX Runtime's DepthToSpace costs more on a CPU than the whole convolution.
    """

    def __init__(self, c_in: int, c_out: int, separable: bool = False) -> None:
        if separable:
            super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), conv(c_in, c_out, 3, 1, True), nn.LeakyReLU(0.1))
        else:
            super().__init__(conv(c_in, c_out * 4, 3, 1), nn.LeakyReLU(0.1), nn.PixelShuffle(2))


class ResidualBlock(nn.Module):
    """x + conv(lrelu(conv(x))), then LeakyReLU 0.2 (DeepFaceLab's decoder block)."""

    def __init__(self, c: int, separable: bool = False) -> None:
        super().__init__()
        self.conv1 = conv(c, c, 3, 1, separable)
        self.conv2 = conv(c, c, 3, 1, separable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.conv1(x), 0.2)
        return F.leaky_relu(x + self.conv2(y), 0.2)


class Encoder(nn.Module):
    """(N, 3, R, R) -> (N, 8e * (R/16)^2) flat code."""

    def __init__(self, e_dims: int, separable: bool) -> None:
        super().__init__()
        widths = [e_dims, e_dims * 2, e_dims * 4, e_dims * 8]
        # The stem stays a full convolution: a depthwise conv over 3 channels learns almost nothing.
        layers = [Downscale(3, widths[0], 5 if not separable else 3, separable=False)]
        layers += [Downscale(a, b, 5, separable) for a, b in zip(widths, widths[1:])]
        self.body = nn.Sequential(*layers)
        self.out_channels = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.body(x), 1)


class Inter(nn.Module):
    """flat code -> Dense(ae) -> Dense(r*r*out) -> (N, out, r, r) -> Upscale -> (N, out, 2r, 2r)."""

    def __init__(self, in_features: int, ae_dims: int, out_dims: int, lowest_res: int, separable: bool) -> None:
        super().__init__()
        self.out_dims, self.lowest_res = out_dims, lowest_res
        self.dense1 = nn.Linear(in_features, ae_dims)
        self.dense2 = nn.Linear(ae_dims, lowest_res * lowest_res * out_dims)
        self.upscale = Upscale(out_dims, out_dims, separable)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        x = self.dense2(self.dense1(code))
        return self.upscale(x.reshape(-1, self.out_dims, self.lowest_res, self.lowest_res))


class CoarseMask(nn.Module):
    """(N, c_in, R/8, R/8) -> (N, 1, R, R) sigmoid mask made at R/scale (scale 2 or 4): the first
    Upscale stages of a mask branch (widths 8m, 4m), a 1x1 conv, the logits upsampled (bilinear) to R."""

    def __init__(self, c_in: int, m: int, separable: bool, scale: int) -> None:
        super().__init__()
        self.scale = scale
        stages = [Upscale(c_in, m * 8, separable)] + ([Upscale(m * 8, m * 4, separable)] if scale == 2 else [])
        self.body = nn.Sequential(*stages, nn.Conv2d(m * 8 if scale == 4 else m * 4, 1, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        logits = F.interpolate(self.body(z), scale_factor=float(self.scale), mode="bilinear", align_corners=False)
        return torch.sigmoid(logits)


def mask_branch(c_in: int, m: int, separable: bool, scale: int = 1) -> nn.Module:
    """A decoder's mask branch: (N, c_in, R/8, R/8) -> (N, 1, R, R) in [0, 1]; three Upscale stages of widths
    8m, 4m, 2m and a 1x1 conv (DeepFaceLab's), or with ``scale`` 2 or 4 ``CoarseMask``."""
    if scale in (2, 4):
        return CoarseMask(c_in, m, separable, scale)
    return nn.Sequential(Upscale(c_in, m * 8, separable), Upscale(m * 8, m * 4, separable),
                         Upscale(m * 4, m * 2, separable), nn.Conv2d(m * 2, 1, 1), nn.Sigmoid())


class Decoder(nn.Module):
    """(N, c_in, R/8, R/8) -> (face (N, 3, R, R), mask (N, 1, R, R)), both sigmoid in [0, 1].

    The mask branch is separate from the face branch (as in DeepFaceLab), so the exporter can run
    the dst decoder's mask alone.
    """

    def __init__(self, c_in: int, d_dims: int, d_mask_dims: int, separable: bool, last_res_block: bool = True,
                 mask_scale: int = 1) -> None:
        super().__init__()
        d, m = d_dims, d_mask_dims
        self.face = nn.Sequential(
            Upscale(c_in, d * 8, separable), ResidualBlock(d * 8, separable),
            Upscale(d * 8, d * 4, separable), ResidualBlock(d * 4, separable),
            Upscale(d * 4, d * 2, separable), ResidualBlock(d * 2, separable) if last_res_block else nn.Identity(),
            nn.Conv2d(d * 2, 3, 1), nn.Sigmoid(),
        )
        self.mask = mask_branch(c_in, m, separable, mask_scale)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.face(z), self.mask(z)


class PriorPyramid(nn.Module):
    """The reference prior (N, 3, R, R) -> features at R/2, R/4, R/8 of widths p, 2p, 4p."""

    def __init__(self, p: int, separable: bool) -> None:
        super().__init__()
        # the stem is a full convolution (3 input channels), as in the encoder
        self.levels = nn.ModuleList([Downscale(3, p, 3, separable=False), Downscale(p, p * 2, 3, separable),
                                     Downscale(p * 2, p * 4, 3, separable)])

    def forward(self, prior: torch.Tensor) -> list[torch.Tensor]:
        feats, x = [], prior
        for level in self.levels:
            x = level(x)
            feats.append(x)
        return feats


class PriorDecoder(nn.Module):
    """The src decoder of a prior model: (z (N, c_in, R/8, R/8), prior (N, 3, R, R)) -> (face, mask).

    The prior's feature pyramid joins the decoder at R/8, R/4 and R/2 (concatenated before each
    upscale and before the last convolution). The face is the prior plus a learned correction made at
    half resolution and upsampled (its last convolution starts at zero, so an untrained model outputs
    the warp itself): the full-resolution detail comes from the reference, the decoder adds what the
    warp lacks (mouth interior, eyes, light), and nothing runs at full resolution but the upsampling.
    The mask branch reads z only, as in the plain decoder.
    """

    def __init__(self, c_in: int, d_dims: int, d_mask_dims: int, p: int, separable: bool,
                 mask_scale: int = 1) -> None:
        super().__init__()
        d, m = d_dims, d_mask_dims
        self.pyramid = PriorPyramid(p, separable)
        self.up1 = nn.Sequential(Upscale(c_in + 4 * p, d * 8, separable), ResidualBlock(d * 8, separable))
        self.up2 = nn.Sequential(Upscale(d * 8 + 2 * p, d * 4, separable), ResidualBlock(d * 4, separable))
        self.fuse = nn.Sequential(conv(d * 4 + p, d * 2, 3, 1, separable), nn.LeakyReLU(0.1))
        self.delta = nn.Conv2d(d * 2, 3, 1)
        nn.init.zeros_(self.delta.weight)
        nn.init.zeros_(self.delta.bias)
        self.mask = mask_branch(c_in, m, separable, mask_scale)

    def forward(self, z: torch.Tensor, prior: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f_2, f_4, f_8 = self.pyramid(prior)
        x = self.up1(torch.cat([z, f_8], 1))
        x = self.up2(torch.cat([x, f_4], 1))
        x = self.fuse(torch.cat([x, f_2], 1))
        delta = F.interpolate(self.delta(x), scale_factor=2.0, mode="bilinear", align_corners=False)
        return (prior + delta).clamp(0.0, 1.0), self.mask(z)


class FaceSwapModel(nn.Module):
    """DF or LIAE autoencoder. ``forward(src, dst)`` returns the five training predictions."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config.validate()
        c, sep = config, config.separable
        lowest = c.resolution // 16
        self.encoder = Encoder(c.e_dims, sep)
        enc_features = self.encoder.out_channels * lowest * lowest
        if c.arch == "df":
            self.inter = Inter(enc_features, c.ae_dims, c.ae_dims, lowest, sep)
            ms = c.mask_scale
            self.decoder_src = (PriorDecoder(c.ae_dims, c.d_dims, c.d_mask_dims, c.prior_dims, sep, ms) if c.prior
                                else Decoder(c.ae_dims, c.d_dims, c.d_mask_dims, sep, c.last_res_block, ms))
            self.decoder_dst = Decoder(c.ae_dims, c.d_dims, c.d_mask_dims, sep, c.last_res_block, ms)
        else:
            self.inter_AB = Inter(enc_features, c.ae_dims, c.ae_dims * 2, lowest, sep)
            self.inter_B = Inter(enc_features, c.ae_dims, c.ae_dims * 2, lowest, sep)
            self.decoder = Decoder(c.ae_dims * 4, c.d_dims, c.d_mask_dims, sep, c.last_res_block, c.mask_scale)

    def _decode_src(self, code: torch.Tensor, prior: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.config.prior:
            if prior is None:
                raise ValueError("this model reads a reference prior: pass prior (N, 3, R, R)")
            return self.decoder_src(code, prior)
        return self.decoder_src(code)

    def forward(self, src: torch.Tensor, dst: torch.Tensor | None,
                src_prior: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """src, dst: (N, 3, R, R) in [0, 1]; src_prior: the reference warped onto each src face (prior
        models only). Returns the reconstructions src_src, dst_dst and their masks src_src_mask,
        dst_dst_mask (the swap is ``swap``; it takes no part in training). dst None (df only): src alone."""
        if self.config.arch == "df":
            if dst is None:
                src_src, src_src_m = self._decode_src(self.inter(self.encoder(src)), src_prior)
                return {"src_src": src_src, "src_src_mask": src_src_m}
            # One encoder/inter pass over both batches (shared weights), then the two decoders.
            src_code, dst_code = self.inter(self.encoder(torch.cat([src, dst], 0))).split([len(src), len(dst)])
            src_src, src_src_m = self._decode_src(src_code, src_prior)
            dst_dst, dst_dst_m = self.decoder_dst(dst_code)
        else:
            if dst is None:
                raise ValueError("the liae architecture trains both sides together: give dst faces")
            src_enc, dst_enc = self.encoder(torch.cat([src, dst], 0)).split([len(src), len(dst)])
            src_ab = self.inter_AB(src_enc)
            src_src, src_src_m = self.decoder(torch.cat([src_ab, src_ab], 1))
            dst_dst, dst_dst_m = self.decoder(torch.cat([self.inter_B(dst_enc), self.inter_AB(dst_enc)], 1))
        return {"src_src": src_src, "src_src_mask": src_src_m, "dst_dst": dst_dst, "dst_dst_mask": dst_dst_m}

    def swap(self, face: torch.Tensor, prior: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The exported path: face (N, 3, R, R) (and, for prior models, the reference warped onto it)
        -> (mask of the input face from the dst side, the face as src identity, its mask).
        DeepFaceLab's DFM outputs, in order."""
        if self.config.arch == "df":
            code = self.inter(self.encoder(face))
            face_mask = self.decoder_dst.mask(code)
            celeb, celeb_mask = self._decode_src(code, prior)
        else:
            enc = self.encoder(face)
            ab, b = self.inter_AB(enc), self.inter_B(enc)
            face_mask = self.decoder.mask(torch.cat([b, ab], 1))
            celeb, celeb_mask = self.decoder(torch.cat([ab, ab], 1))
        return face_mask, celeb, celeb_mask


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
