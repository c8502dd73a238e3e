"""Training batches made on the device: facesets decoded once into uint8 tensors, augmented in torch.

The same augmentation as ``training/dataset.py`` (DeepFaceLab's), drawn from the same distributions,
but for a whole batch at once on the GPU (or the CPU, where the tests run it):

- colour: RCT toward a random dst face (src only, probability ``color_transfer``), then HSV jitter;
- a random affine (rotation, scale, shift about the centre; optional flip), bilinear with replicated
  border, applied to the face and its two masks;
- the random warp of the input: a coarse grid (cell R/2, R/4 or R/8) jittered by N(0, 0.24 cell) at
  inner points, upsampled bicubically into a smooth flow, then ``grid_sample``.

Randomness comes from one ``torch.Generator`` reseeded for each (seed, step, rank), so a run that
resumes at step k draws exactly the batches an uninterrupted run draws. Batches are dicts with the
keys of the CPU path's collated batches (``{src,dst}_{input,target,mask,em}``), float32 in [0, 1].
Colour conversions follow OpenCV's float conventions (HSV: H in [0, 360); L*a*b*: sRGB, D65), the
ones the CPU path uses, in small functions over (N, 3, H, W) tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from training.dataset import AugmentConfig, FaceSource
from training.faceset import Faceset

# ---- colour spaces (OpenCV's float conventions) ------------------------------------------------

_RGB2XYZ = torch.tensor([[0.412453, 0.357580, 0.180423],
                         [0.212671, 0.715160, 0.072169],
                         [0.019334, 0.119193, 0.950227]])
_WHITE = torch.tensor([0.950456, 1.0, 1.088754])


def bgr_to_hsv(bgr: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) BGR in [0, 1] -> HSV with H in [0, 360), S and V in [0, 1] (OpenCV's float HSV)."""
    b, g, r = bgr.unbind(1)
    v, _ = bgr.max(1)
    lo, _ = bgr.min(1)
    delta = v - lo
    s = torch.where(v > 0, delta / v.clamp_min(1e-12), torch.zeros_like(v))
    d = delta.clamp_min(1e-12)
    h = torch.where(v == r, 60 * (g - b) / d, torch.where(v == g, 120 + 60 * (b - r) / d, 240 + 60 * (r - g) / d))
    h = torch.where(delta > 0, h, torch.zeros_like(h))
    h = torch.where(h < 0, h + 360, h)
    return torch.stack([h, s, v], 1)


def hsv_to_bgr(hsv: torch.Tensor) -> torch.Tensor:
    """Inverse of ``bgr_to_hsv``: (N, 3, H, W) HSV -> BGR in [0, 1]."""
    h, s, v = hsv.unbind(1)
    h6 = (h % 360) / 60
    sector = torch.floor(h6)
    f = h6 - sector
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    sector = sector.long() % 6
    r = torch.stack([v, q, p, p, t, v], 1).gather(1, sector[:, None]).squeeze(1)
    g = torch.stack([t, v, v, q, p, p], 1).gather(1, sector[:, None]).squeeze(1)
    b = torch.stack([p, p, t, v, v, q], 1).gather(1, sector[:, None]).squeeze(1)
    return torch.stack([b, g, r], 1)


def bgr_to_lab(bgr: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) sRGB BGR in [0, 1] -> CIE L*a*b* (L in [0, 100]), D65 (OpenCV's COLOR_BGR2LAB)."""
    rgb = bgr.flip(1)
    linear = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb.clamp_min(0) + 0.055) / 1.055) ** 2.4)
    xyz = torch.einsum("ij,njhw->nihw", _RGB2XYZ.to(bgr), linear) / _WHITE.to(bgr)[None, :, None, None]
    f = torch.where(xyz > 0.008856, xyz.clamp_min(1e-12) ** (1 / 3), 7.787 * xyz + 16 / 116)
    y = xyz[:, 1]
    lightness = torch.where(y > 0.008856, 116 * f[:, 1] - 16, 903.3 * y)
    return torch.stack([lightness, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


def lab_to_bgr(lab: torch.Tensor) -> torch.Tensor:
    """Inverse of ``bgr_to_lab`` (not clipped)."""
    lightness, a, b = lab.unbind(1)
    fy = (lightness + 16) / 116
    fx, fz = fy + a / 500, fy - b / 200
    f = torch.stack([fx, fy, fz], 1)
    xyz = torch.where(f > 0.206893, f**3, (f - 16 / 116) / 7.787)
    xyz = torch.cat([xyz[:, :1], torch.where(lightness > 7.9996, fy**3, lightness / 903.3)[:, None], xyz[:, 2:]], 1)
    linear = torch.einsum("ij,njhw->nihw", torch.linalg.inv(_RGB2XYZ).to(lab), xyz * _WHITE.to(lab)[None, :, None, None])
    rgb = torch.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear.clamp_min(0) ** (1 / 2.4) - 0.055)
    return rgb.flip(1)


def masked_mean_std(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and std of x (N, C, H, W) weighted by mask (N, 1, H, W); a mask
    summing under 1 counts the whole image (as ``realtime.merging.color_transfer.color_stats``). (N, C, 1, 1) each."""
    total = mask.sum((2, 3), keepdim=True)
    weights = torch.where(total < 1, torch.ones_like(mask), mask)
    total = weights.sum((2, 3), keepdim=True)
    mean = (x * weights).sum((2, 3), keepdim=True) / total
    var = ((x - mean) ** 2 * weights).sum((2, 3), keepdim=True) / total
    return mean, var.clamp_min(1e-6).sqrt()


def rct(image: torch.Tensor, reference: torch.Tensor, image_mask: torch.Tensor,
        reference_mask: torch.Tensor) -> torch.Tensor:
    """Reinhard colour transfer per sample: the L*a*b* mean/std of ``reference`` under its mask onto
    ``image`` under its own; (N, 3, H, W) BGR [0, 1] in and out (clipped)."""
    lab, ref = bgr_to_lab(image), bgr_to_lab(reference)
    mean_s, std_s = masked_mean_std(lab, image_mask)
    mean_r, std_r = masked_mean_std(ref, reference_mask)
    return lab_to_bgr((lab - mean_s) * (std_r / std_s) + mean_r).clamp(0, 1)


def hsv_jitter(img: torch.Tensor, gen: torch.Generator, aug: AugmentConfig) -> torch.Tensor:
    """Random hue shift and saturation/value gains per sample, as ``dataset.hsv_jitter``."""
    n = img.shape[0]
    u = (torch.rand((n, 3), generator=gen, device=img.device) * 2 - 1)[:, :, None, None]
    h, s, v = bgr_to_hsv(img).unbind(1)
    h = (h + u[:, 0] * aug.hue * 360.0) % 360.0
    s = (s * (1 + u[:, 1] * aug.saturation)).clamp(0, 1)
    v = (v * (1 + u[:, 2] * aug.value)).clamp(0, 1)
    return hsv_to_bgr(torch.stack([h, s, v], 1))


# ---- geometry ----------------------------------------------------------------------------------

def pixel_grid(size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) pixel-centre coordinates of a size x size image, each (size, size)."""
    coords = torch.arange(size, device=device, dtype=torch.float32)
    return coords[None, :].expand(size, size), coords[:, None].expand(size, size)


def sample(img: torch.Tensor, map_x: torch.Tensor, map_y: torch.Tensor) -> torch.Tensor:
    """``cv2.remap`` (bilinear, replicated border) in torch: out[n, :, y, x] = img[n, :, map_y, map_x]
    with maps in source pixel coordinates (N, H, W)."""
    h, w = img.shape[-2:]
    grid = torch.stack([(2 * map_x + 1) / w - 1, (2 * map_y + 1) / h - 1], -1)
    return F.grid_sample(img, grid.to(img.dtype), mode="bilinear", padding_mode="border", align_corners=False)


def random_affine(n: int, size: int, gen: torch.Generator, aug: AugmentConfig, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 2, 3) matrices (source -> output pixels, ``cv2.getRotationMatrix2D`` about the centre plus a
    shift) and (N,) flip flags, drawn as ``dataset.random_affine`` draws them."""
    u = torch.rand((n, 5), generator=gen, device=device) * 2 - 1
    angle = torch.deg2rad(u[:, 0] * aug.rotation_deg)
    scale = 1 + u[:, 1] * aug.scale
    alpha, beta = scale * torch.cos(angle), scale * torch.sin(angle)
    c = size / 2
    tx = (1 - alpha) * c - beta * c + u[:, 2] * aug.shift * size
    ty = beta * c + (1 - alpha) * c + u[:, 3] * aug.shift * size
    mats = torch.stack([torch.stack([alpha, beta, tx], 1), torch.stack([-beta, alpha, ty], 1)], 1)
    flips = (u[:, 4] < 0) if aug.flip else torch.zeros(n, dtype=torch.bool, device=device)
    return mats, flips


def affine_maps(mats: torch.Tensor, flips: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Source coordinates (N, S, S) of every output pixel of ``cv2.warpAffine(img, mat)`` (then a
    horizontal flip where ``flips``)."""
    x, y = pixel_grid(size, mats.device)
    x = torch.where(flips[:, None, None], size - 1 - x, x)
    a, b, tx = mats[:, 0, 0, None, None], mats[:, 0, 1, None, None], mats[:, 0, 2, None, None]
    c, d, ty = mats[:, 1, 0, None, None], mats[:, 1, 1, None, None], mats[:, 1, 2, None, None]
    det = a * d - b * c
    dx, dy = x - tx, y - ty
    return (d * dx - b * dy) / det, (-c * dx + a * dy) / det


def random_warp_maps(n: int, size: int, gen: torch.Generator, device) -> tuple[torch.Tensor, torch.Tensor]:
    """DeepFaceLab's random warp as ``dataset.random_warp_maps`` draws it, for N samples: the cell
    size (R/2, R/4, R/8) is drawn per sample; every variant is computed and one kept per sample
    (no data-dependent shapes, so no host synchronisation)."""
    choice = torch.randint(1, 4, (n,), generator=gen, device=device)
    map_x = torch.empty((n, size, size), device=device)
    map_y = torch.empty((n, size, size), device=device)
    for k in (1, 2, 3):
        cell = size // 2**k
        points = size // cell + 1
        line = torch.linspace(0, size, points, device=device)
        grid = torch.stack([line[None, :].expand(points, points), line[:, None].expand(points, points)])
        grid = grid[None].repeat(n, 1, 1, 1)
        noise = torch.randn((n, 2, points - 2, points - 2), generator=gen, device=device) * (cell * 0.24)
        grid[:, :, 1:-1, 1:-1] += noise
        half, full = cell // 2, size + cell
        smooth = F.interpolate(grid, size=(full, full), mode="bicubic", align_corners=False)[:, :, half:half + size,
                                                                                          half:half + size]
        keep = (choice == k)[:, None, None]
        map_x = torch.where(keep, smooth[:, 0], map_x)
        map_y = torch.where(keep, smooth[:, 1], map_y)
    return map_x, map_y


def augment(img: torch.Tensor, mask: torch.Tensor, em: torch.Tensor, gen: torch.Generator,
            aug: AugmentConfig) -> dict[str, torch.Tensor]:
    """One side of a batch, as ``dataset.make_sample`` does one face: img (N, 3, R, R), masks
    (N, 1, R, R) float in [0, 1] -> input, target, mask, em."""
    n, _, size, _ = img.shape
    if aug.hsv_jitter:
        img = hsv_jitter(img, gen, aug)
    mats, flips = random_affine(n, size, gen, aug, img.device)
    warped = sample(torch.cat([img, mask, em], 1), *affine_maps(mats, flips, size))
    target, mask, em = warped[:, :3], warped[:, 3:4], warped[:, 4:5]
    inp = sample(target, *random_warp_maps(n, size, gen, img.device)) if aug.random_warp else target
    return {"input": inp, "target": target, "mask": mask, "em": em}


# ---- facesets on the device, batches per step ----------------------------------------------------

@dataclass
class DeviceFaceset:
    """A faceset's faces decoded once: images (N, 3, R, R), hull and eyes/mouth masks (N, 1, R, R),
    all uint8 (masks x 255) on ``device``."""

    images: torch.Tensor
    masks: torch.Tensor
    em: torch.Tensor

    @classmethod
    def load(cls, faceset: Faceset, resolution: int, device, progress: bool = False) -> DeviceFaceset:
        source = FaceSource(faceset, resolution)  # the CPU path's loader: same resize and masks
        n = len(source)
        images = torch.empty((n, 3, resolution, resolution), dtype=torch.uint8)
        masks = torch.empty((n, 1, resolution, resolution), dtype=torch.uint8)
        em = torch.empty((n, 1, resolution, resolution), dtype=torch.uint8)
        for i in tqdm(range(n), desc=f"decoding {faceset.path.name}", unit="face", disable=not progress):
            img, mask, eyes_mouth = source.load(i)
            images[i] = torch.from_numpy(np.rint(img * 255).astype(np.uint8).transpose(2, 0, 1))
            masks[i, 0] = torch.from_numpy(np.rint(mask * 255).astype(np.uint8))
            em[i, 0] = torch.from_numpy(np.rint(eyes_mouth * 255).astype(np.uint8))
        return cls(images.to(device), masks.to(device), em.to(device))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def take(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Faces at ``index`` as float32 [0, 1]: image, mask, eyes/mouth mask."""
        return tuple(t[index].float().div_(255) for t in (self.images, self.masks, self.em))


def step_seed(seed: int, step: int, rank: int = 0) -> int:
    """The generator seed of one step of one rank (a function of the three, nothing else)."""
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1, np.uint64)[0] % (2**63))


class DeviceBatches:
    """Batches for steps ``start, start+1, ...`` made on the device: ``next()`` -> the batch dict."""

    def __init__(self, src: DeviceFaceset, dst: DeviceFaceset, batch_size: int, aug: AugmentConfig, seed: int = 0,
                 start_step: int = 0, rank: int = 0, channels_last: bool = True) -> None:
        self.src, self.dst, self.batch, self.aug = src, dst, batch_size, aug
        self.seed, self.step, self.rank = seed, start_step, rank
        self.channels_last = channels_last
        self.device = src.images.device
        self.gen = torch.Generator(device=self.device)

    def make(self, step: int) -> dict[str, torch.Tensor]:
        """The batch of ``step`` (the same every time it is asked for)."""
        gen, b, dev = self.gen, self.batch, self.device
        gen.manual_seed(step_seed(self.seed, step, self.rank))
        src_i = torch.randint(len(self.src), (b,), generator=gen, device=dev)
        dst_i = torch.randint(len(self.dst), (b,), generator=gen, device=dev)
        ref_i = torch.randint(len(self.dst), (b,), generator=gen, device=dev)
        transfer = torch.rand((b, 1, 1, 1), generator=gen, device=dev) < self.aug.color_transfer
        s_img, s_mask, s_em = self.src.take(src_i)
        if self.aug.color_transfer > 0:
            ref, ref_mask, _ = self.dst.take(ref_i)
            s_img = torch.where(transfer, rct(s_img, ref, s_mask, ref_mask), s_img)
        out = {}
        for role, faces in (("src", (s_img, s_mask, s_em)), ("dst", self.dst.take(dst_i))):
            for key, value in augment(*faces, gen, self.aug).items():
                if self.channels_last:
                    value = value.contiguous(memory_format=torch.channels_last)
                out[f"{role}_{key}"] = value
        return out

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        batch = self.make(self.step)
        self.step += 1
        return batch


__all__ = [
    "DeviceBatches",
    "DeviceFaceset",
    "augment",
    "bgr_to_hsv",
    "bgr_to_lab",
    "hsv_jitter",
    "hsv_to_bgr",
    "lab_to_bgr",
    "random_affine",
    "random_warp_maps",
    "rct",
    "step_seed",
]
