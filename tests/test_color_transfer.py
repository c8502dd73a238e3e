"""Colour transfer on real faces: each mode moves the image's statistics onto the reference's."""

import numpy as np
import pytest

from realtime.merging.color_transfer import (MODES, ColorStats, apply_transfer, apply_transfer_u8, color_stats, color_stats_u8,
                                     space_for, transfer)


@pytest.fixture(scope="module")
def pair(astronaut, grace_hopper):
    a = astronaut[100:300, 150:350].astype(np.float32) / 255.0
    g = grace_hopper[150:350, 150:350].astype(np.float32) / 255.0
    return a, g


@pytest.mark.parametrize("mode", ["rct", "lct", "mkl"])
def test_transfer_matches_reference_statistics(pair, mode):
    image, reference = pair
    out = transfer(image, reference, mode)
    space = space_for(mode)
    ref, before, after = (color_stats(x, space=space) for x in (reference, image, out))
    # the means move most of the way to the reference's (clipping to [0,1] keeps it from exact)
    assert np.abs(after.mean - ref.mean).max() < 0.25 * np.abs(before.mean - ref.mean).max()
    if mode != "rct":  # covariance matching modes: the covariance follows too
        assert np.abs(after.cov - ref.cov).max() < 0.5 * np.abs(before.cov - ref.cov).max()
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1


def test_masked_statistics_ignore_pixels_outside_the_mask(pair):
    image, _ = pair
    mask = np.zeros(image.shape[:2], np.float32)
    mask[50:150, 50:150] = 1
    inside = color_stats(image[50:150, 50:150], space="bgr")
    masked = color_stats(image, mask, space="bgr")
    np.testing.assert_allclose(masked.mean, inside.mean, atol=1e-6)
    np.testing.assert_allclose(masked.cov, inside.cov, atol=1e-6)


def test_identity_transfer_and_none_mode_leave_image_unchanged(pair):
    image, _ = pair
    np.testing.assert_array_equal(transfer(image, image, "none"), image)
    for mode in ("lct", "mkl"):
        np.testing.assert_allclose(transfer(image, image, mode), image, atol=2e-3)


def test_lerp_moves_statistics_between_endpoints(pair):
    a, b = (color_stats(x, space="lab") for x in pair)
    half = a.lerp(b, 0.5)
    np.testing.assert_allclose(half.mean, (a.mean + b.mean) / 2)
    with pytest.raises(ValueError):
        a.lerp(ColorStats(a.mean, a.cov, "bgr"), 0.5)


def test_bad_mode_and_mismatched_space_are_refused(pair):
    image, ref = pair
    with pytest.raises(ValueError, match="choose one of"):
        transfer(image, ref, "sepia")
    with pytest.raises(ValueError, match="needs lab"):
        apply_transfer(image, color_stats(image, space="bgr"), color_stats(ref, space="bgr"), "rct")
    assert set(MODES) == {"none", "rct", "lct", "mkl"}


@pytest.mark.parametrize("mode", MODES)
def test_the_8_bit_path_matches_the_float_path(pair, mode):
    """Statistics of a uint8 image come back in the float path's units, and the transfer worked in 8-bit
    colour codes lands within a few grey levels of the float transfer (the merge's fast path)."""
    image, reference = (np.round(x * 255).astype(np.uint8) for x in pair)
    space = space_for(mode)
    mask = np.zeros(image.shape[:2], np.float32)
    mask[20:180, 30:170] = 1
    src8, ref8 = color_stats_u8(image, mask, space), color_stats_u8(reference, None, space)
    src, ref = color_stats(image.astype(np.float32) / 255, mask, space), color_stats(reference.astype(np.float32) / 255, None, space)
    np.testing.assert_allclose(src8.mean, src.mean, atol=0.6 if space == "lab" else 1e-6)
    np.testing.assert_allclose(np.diag(ref8.cov), np.diag(ref.cov), rtol=0.05, atol=0.5 if space == "lab" else 1e-6)
    if space == "bgr":
        np.testing.assert_allclose(ref8.cov, ref.cov, atol=1e-6)
    fast = apply_transfer_u8(image, src8, ref8, mode)
    slow = apply_transfer(image.astype(np.float32) / 255, src, ref, mode) * 255
    assert fast.dtype == np.uint8 and fast.shape == image.shape
    diff = np.abs(fast.astype(np.float32) - slow)
    assert np.median(diff) <= 1.0 and np.percentile(diff, 99) <= 4.0, (np.median(diff), np.percentile(diff, 99))
