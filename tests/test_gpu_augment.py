"""Device augmentation (training/gpu_augment.py) against the CPU path (training/dataset.py): colour
conversions equal OpenCV's, geometry equals cv2.warpAffine, and batches drawn over the same seed range
have the same statistics; batches are a function of (seed, step) alone."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from training.dataset import AugmentConfig, PairDataset, open_facesets
from training.gpu_augment import (
    DeviceBatches,
    DeviceFaceset,
    affine_maps,
    bgr_to_hsv,
    bgr_to_lab,
    hsv_to_bgr,
    lab_to_bgr,
    random_affine,
    rct,
    sample,
)

SAMPLES = 96  # per path; the statistics below move by less than their tolerances between seed ranges


def _image(seed: int = 0, size: int = 48) -> tuple[np.ndarray, torch.Tensor]:
    img = np.random.default_rng(seed).random((size, size, 3), dtype=np.float32)
    return img, torch.from_numpy(img.transpose(2, 0, 1).copy())[None]


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t[0].numpy().transpose(1, 2, 0)


def test_colour_conversions_equal_opencv():
    img, t = _image()
    assert np.abs(_hwc(bgr_to_hsv(t)) - cv2.cvtColor(img, cv2.COLOR_BGR2HSV)).max() < 2e-3  # H in degrees
    assert float((hsv_to_bgr(bgr_to_hsv(t)) - t).abs().max()) < 1e-5
    lab = cv2.cvtColor(img, cv2.COLOR_BGR2LAB)
    assert np.abs(_hwc(bgr_to_lab(t)) - lab).max() < 0.6  # OpenCV's float Lab uses table approximations
    assert np.abs(_hwc(lab_to_bgr(torch.from_numpy(lab.transpose(2, 0, 1).copy())[None]))
                  - cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)).max() < 2e-3
    assert float((lab_to_bgr(bgr_to_lab(t)) - t).abs().max()) < 1e-4


def test_rct_equals_the_cpu_transfer():
    from realtime.merging.color_transfer import rct as rct_cpu

    img, t = _image(1)
    ref, r = _image(2)
    ref = (ref * 0.5 + 0.3).astype(np.float32)
    r = r * 0.5 + 0.3
    mask = np.zeros((48, 48), np.float32)
    mask[8:40, 10:38] = 1
    m = torch.from_numpy(mask)[None, None]
    assert np.abs(_hwc(rct(t, r, m, m)) - rct_cpu(img, ref, mask, mask)).max() < 1e-2


def test_affine_and_flip_equal_warp_affine():
    img, t = _image(3, 64)
    gen = torch.Generator().manual_seed(7)
    mats, _ = random_affine(1, 64, gen, AugmentConfig(), "cpu")
    ref = cv2.warpAffine(img, mats[0].double().numpy(), (64, 64), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    for flip in (False, True):
        out = _hwc(sample(t, *affine_maps(mats, torch.tensor([flip]), 64)))
        assert np.abs(out - (ref[:, ::-1] if flip else ref)).max() < 1e-3


def _statistics(batches: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    """Figures that each part of the augmentation moves: warp strength, colour, affine spread."""
    cat = {k: torch.cat([b[k].float() for b in batches]) for k in batches[0]}
    out = {}
    for role in ("src", "dst"):
        inp, target, mask = cat[f"{role}_input"], cat[f"{role}_target"], cat[f"{role}_mask"][:, 0]
        out[f"{role}_warp"] = float((inp - target).abs().mean())
        means = target.mean((2, 3))
        for c, name in enumerate("bgr"):
            out[f"{role}_mean_{name}"] = float(means[:, c].mean())
            out[f"{role}_spread_{name}"] = float(means[:, c].std())
        ys, xs = torch.meshgrid(torch.arange(mask.shape[1]), torch.arange(mask.shape[2]), indexing="ij")
        area = mask.sum((1, 2))
        cx, cy = (mask * xs).sum((1, 2)) / area, (mask * ys).sum((1, 2)) / area
        out[f"{role}_mask_area"] = float(area.mean())
        out[f"{role}_centre_spread"] = float(torch.sqrt(cx.var() + cy.var()))
        out[f"{role}_em"] = float(cat[f"{role}_em"].mean())
    return out


def _cpu_batches(src, dst, aug, seed) -> list[dict[str, torch.Tensor]]:
    data = PairDataset(src, dst, 128, aug, seed)
    return [{k: v[None] for k, v in data[i].items()} for i in range(SAMPLES)]


def _device_batches(src, dst, aug, seed) -> list[dict[str, torch.Tensor]]:
    make = DeviceBatches(DeviceFaceset.load(src, 128, "cpu"), DeviceFaceset.load(dst, 128, "cpu"), 16, aug, seed)
    return [make.make(step) for step in range(SAMPLES // 16)]


@pytest.fixture(scope="module")
def facesets(astronaut_faceset, grace_hopper_faceset):
    return open_facesets(astronaut_faceset, grace_hopper_faceset)


def test_device_batches_have_the_cpu_paths_statistics(facesets):
    src, dst = facesets
    aug = AugmentConfig(flip=True)
    cpu, dev = _statistics(_cpu_batches(src, dst, aug, 11)), _statistics(_device_batches(src, dst, aug, 11))
    print({k: (round(cpu[k], 4), round(dev[k], 4)) for k in cpu})
    for key in cpu:
        assert dev[key] == pytest.approx(cpu[key], rel=0.2, abs=0.004), (key, cpu[key], dev[key])


def test_batches_depend_on_seed_and_step_only(facesets):
    src, dst = facesets
    a = DeviceBatches(DeviceFaceset.load(src, 64, "cpu"), DeviceFaceset.load(dst, 64, "cpu"), 4, AugmentConfig(), 3)
    b = DeviceBatches(a.src, a.dst, 4, AugmentConfig(), 3, start_step=5)
    first = [next(a) for _ in range(7)]
    resumed = next(b)
    assert all(torch.equal(first[5][k], resumed[k]) for k in first[5])  # a resumed stream draws the same
    assert not torch.equal(first[5]["src_input"], first[6]["src_input"])
    assert set(first[0]) == {f"{r}_{k}" for r in ("src", "dst") for k in ("input", "target", "mask", "em")}
    for k, v in first[0].items():
        assert v.dtype == torch.float32 and v.shape[0] == 4 and v.shape[-1] == 64 and 0 <= float(v.min()) <= float(v.max()) <= 1, k
    assert first[0]["src_input"].is_contiguous(memory_format=torch.channels_last)
