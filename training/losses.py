"""Losses of DeepFaceLab's SAEHD, over (N, C, H, W) tensors in [0, 1].

- masked DSSIM (kernel R/11.6; at R >= 256 also R/23.2, the two averaged) weighted 10, plus masked
  MSE weighted 10;
- eyes/mouth priority: 300 x mean |target - pred| inside the eyes/mouth mask;
- mask loss: 10 x MSE between the predicted and the landmark-hull mask;
- optional patch GAN: a small PatchGAN discriminator; the generator term is weighted by ``gan_power``.

SSIM is written here (a Gaussian-window SSIM of Wang et al. 2004, constants K1=0.01, K2=0.03)
because no SSIM library (pytorch-msssim, kornia, torchmetrics, piq) is installed in this project's
environment; scikit-image's works on numpy arrays only, without gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def gaussian_window(size: int, sigma: float, channels: int, device=None, dtype=None) -> torch.Tensor:
    """(C, 1, size, size) normalised Gaussian kernels for a depthwise convolution."""
    coords = torch.arange(size, device=device, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).to(dtype).contiguous()


def ssim_map(x: torch.Tensor, y: torch.Tensor, kernel_size: int, sigma: float = 1.5) -> torch.Tensor:
    """Per-pixel SSIM of x, y (N, C, H, W) in [0, 1] over valid windows: (N, C, H-k+1, W-k+1)."""
    c = x.shape[1]
    win = gaussian_window(kernel_size, sigma, c, x.device, torch.float32)
    x, y = x.float(), y.float()
    blur = lambda t: F.conv2d(t, win, groups=c)  # noqa: E731
    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x**2
    syy = blur(y * y) - mu_y**2
    sxy = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))


def dssim(x: torch.Tensor, y: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Structural dissimilarity (1 - mean SSIM) / 2, a scalar."""
    return (1 - ssim_map(x, y, kernel_size).mean()) / 2


def dssim_kernels(resolution: int) -> list[int]:
    """DeepFaceLab's SSIM kernel sizes: R/11.6, and also R/23.2 from 256 px up (odd, >= 3)."""
    sizes = [int(resolution / 11.6)] + ([int(resolution / 23.2)] if resolution >= 256 else [])
    return [max(3, k | 1) for k in sizes]


@dataclass(frozen=True)
class LossWeights:
    dssim: float = 10.0
    mse: float = 10.0
    eyes_mouth: float = 300.0
    mask: float = 10.0


def reconstruction_loss(pred: torch.Tensor, pred_mask: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                        em: torch.Tensor | None, weights: LossWeights = LossWeights()) -> dict[str, torch.Tensor]:
    """Masked DSSIM + MSE (+ eyes/mouth priority) + mask loss for one side; each term a scalar,
    'total' their sum."""
    pred, pred_mask = pred.float(), pred_mask.float()
    pm, tm = pred * mask, target * mask
    kernels = dssim_kernels(pred.shape[-1])
    d = sum(dssim(pm, tm, k) for k in kernels) / len(kernels)
    mse = F.mse_loss(pm, tm)
    terms = {"dssim": d, "mse": mse, "mask": F.mse_loss(pred_mask, mask)}
    total = weights.dssim * d + weights.mse * mse + weights.mask * terms["mask"]
    if em is not None and weights.eyes_mouth > 0:
        terms["eyes_mouth"] = (torch.abs(tm - pm) * em).mean()
        total = total + weights.eyes_mouth * terms["eyes_mouth"]
    terms["total"] = total
    return terms


class PatchDiscriminator(nn.Module):
    """A small PatchGAN: (N, 3, R, R) -> (N, 1, R/8, R/8) logits, one per overlapping patch."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(3, w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, w * 2, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w * 2, w * 4, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w * 4, 1, 3, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def gan_losses(disc: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(discriminator loss on real vs detached fake, generator loss on fake), both BCE on logits."""
    real_logits, fake_logits = disc(real), disc(fake.detach())
    d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
              + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))) / 2
    gen_logits = disc(fake)
    g_loss = F.binary_cross_entropy_with_logits(gen_logits, torch.ones_like(gen_logits))
    return d_loss, g_loss
