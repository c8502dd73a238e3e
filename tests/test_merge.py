"""Merge: the exported model's output blended back on the face ROI of a real frame."""

from __future__ import annotations

import numpy as np
import pytest

from realtime.face.alignment import align_face
from realtime.merging.color_transfer import MODES
from realtime.merging.merge import Merger, MergeSettings
from realtime.swap.swapper import FaceSwapper


@pytest.fixture(scope="module")
def swapped(exported_model, astronaut, still_landmarker):
    sw = FaceSwapper(exported_model)
    face = still_landmarker.detect(astronaut)[0]
    aligned = align_face(astronaut, face.landmarks68, sw.resolution, sw.face_type)
    return aligned, sw.get(aligned.image)


def _merge(frame, aligned, out, settings, opacity=1.0, merger=None):
    merger = merger or Merger(settings, mask_smoothing=1.0, color_smoothing=1.0)
    mask, sl = merger.merge(frame, 0, aligned.image, aligned.matrix, out.face[0], out.face_mask[0],
                            out.celeb_mask[0], aligned.aligned_landmarks68, opacity)
    return mask, sl


@pytest.mark.parametrize("color", MODES)
def test_only_the_masked_face_region_changes(astronaut, swapped, color):
    aligned, out = swapped
    frame = astronaut.copy()
    mask, sl = _merge(frame, aligned, out, MergeSettings(color=color))
    full = np.zeros(frame.shape[:2], np.float32)
    full[sl] = mask
    changed = (frame != astronaut).any(2)
    assert not changed[full == 0].any(), "pixels outside the merge mask changed"
    assert changed[full > 0.5].mean() > 0.5, "the face region did not change"
    h, w = frame.shape[:2]
    assert (sl[0].stop - sl[0].start) * (sl[1].stop - sl[1].start) < 0.6 * h * w  # work on the ROI only


def test_opacity_zero_and_half(astronaut, swapped):
    aligned, out = swapped
    frame = astronaut.copy()
    _merge(frame, aligned, out, MergeSettings(opacity=0.0))
    assert np.array_equal(frame, astronaut)
    full, half = astronaut.copy(), astronaut.copy()
    _merge(full, aligned, out, MergeSettings(color="none"))
    _merge(half, aligned, out, MergeSettings(color="none"), opacity=0.5)
    d_full = np.abs(full.astype(int) - astronaut).sum()
    d_half = np.abs(half.astype(int) - astronaut).sum()
    assert 0.35 * d_full < d_half < 0.65 * d_full


def test_erode_hull_and_blur_shape_the_mask(swapped):
    aligned, out = swapped
    r = out.face.shape[1]
    base = Merger(MergeSettings(erode=0, blur=0), mask_smoothing=1.0)
    eroded = Merger(MergeSettings(erode=6, blur=0), mask_smoothing=1.0)
    grown = Merger(MergeSettings(erode=-6, blur=0, mask="none"), mask_smoothing=1.0)
    hull = Merger(MergeSettings(erode=0, blur=0, mask="none", hull=True), mask_smoothing=1.0)
    args = (out.face_mask[0], out.celeb_mask[0], aligned.aligned_landmarks68)
    m0, m1 = base.mask(0, *args), eroded.mask(0, *args)
    assert m0.shape == (r, r) and (m1 > 0.5).sum() < (m0 > 0.5).sum()
    assert grown.mask(0, *args)[r // 2, r // 2] == 1.0
    mh = hull.mask(0, *args)
    assert mh[r // 2, r // 2] == 1.0 and mh[2, 2] == 0.0  # the hull leaves the crop's corners out
    blurred = Merger(MergeSettings(erode=0, blur=6, mask="none", hull=True), mask_smoothing=1.0).mask(0, *args)
    soft = ((blurred > 0.05) & (blurred < 0.95)).sum()
    assert soft > ((mh > 0.05) & (mh < 0.95)).sum()


def test_rct_moves_colour_toward_the_original(swapped):
    aligned, out = swapped
    merger = Merger(MergeSettings(color="rct"), color_smoothing=1.0)
    mask = np.ones(out.face_mask[0].shape, np.float32)
    face_u8 = np.round(out.face[0] * 255).astype(np.uint8)
    coloured = merger.colour(0, face_u8, aligned.image, mask)
    assert coloured.dtype == np.uint8 and coloured.shape == face_u8.shape
    target = aligned.image.astype(np.float32).mean((0, 1)) / 255
    before = np.abs(out.face[0].mean((0, 1)) - target).sum()
    after = np.abs(coloured.mean((0, 1)) / 255 - target).sum()
    assert after < before or before < 0.02


def test_mask_and_colour_smoothing_carry_over_frames(swapped):
    aligned, out = swapped
    merger = Merger(MergeSettings(erode=0, blur=0, mask="face", threshold=0.0), mask_smoothing=0.5, color_smoothing=0.5)
    m_first = merger.mask(0, out.face_mask[0], out.celeb_mask[0], None)
    zeros = np.zeros_like(out.face_mask[0])
    m_next = merger.mask(0, zeros, zeros, None)
    inner = (slice(20, -20), slice(20, -20))
    assert np.allclose(m_next[inner], 0.5 * m_first[inner], atol=1e-5)  # halfway toward the new mask
    merger.forget([])
    assert np.allclose(merger.mask(0, zeros, zeros, None), 0.0)  # a forgotten face starts fresh


def test_a_soft_model_mask_merges_opaque_inside_and_blends_only_at_the_border(astronaut, swapped):
    """A model whose masks say 0.6 everywhere on the face: the old merge showed both faces at 0.36
    opacity (a ghost); thresholded, the face interior is opaque and only a band of about ``blur``
    aligned pixels at the border is partly transparent."""
    from measure.eval_detail import face_interior, ghosting

    aligned, out = swapped
    face_mask = np.where(out.face_mask[0] > 0.5, 0.6, 0.0).astype(np.float32)
    celeb_mask = np.ones_like(face_mask)
    interior = face_interior(astronaut.shape, aligned.landmarks68)
    weights = {}
    for threshold in (0.0, 0.5):
        merger = Merger(MergeSettings(threshold=threshold, color="none"), mask_smoothing=1.0)
        weight, sl = merger.merge(astronaut.copy(), 0, aligned.image, aligned.matrix, out.face[0], face_mask,
                                  celeb_mask, None)
        full = np.zeros(astronaut.shape[:2], np.float32)
        full[sl] = weight
        weights[threshold] = full
    assert ghosting(weights[0.0], interior) > 0.9  # the double exposure
    assert ghosting(weights[0.5], interior) < 0.05
    assert np.median(weights[0.5][interior]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="threshold"):
        MergeSettings(threshold=1.0).validate()


def test_bad_settings():
    with pytest.raises(ValueError, match="colour transfer"):
        MergeSettings(color="idt").validate()
    with pytest.raises(ValueError, match="opacity"):
        MergeSettings(opacity=2.0).validate()
    with pytest.raises(ValueError, match="mask mode"):
        MergeSettings(mask="x").validate()


def test_merging_the_mask_box_equals_merging_the_whole_crop(astronaut, swapped):
    """The merge works on the mask's bounding box only; the frame it makes is the one a warp and blend of
    the whole crop makes (up to a rounding of 1 grey level), and nothing outside the box's ROI changes."""
    import cv2

    from realtime.face.alignment import warp_from_aligned
    from realtime.merging.merge import mask_box

    aligned, out = swapped
    settings = MergeSettings(color="none")
    m = Merger(settings, mask_smoothing=1.0).mask(0, out.face_mask[0], out.celeb_mask[0], None)
    x0, y0, x1, y1 = mask_box(m, pad=2)
    ys, xs = np.nonzero(m)
    assert x0 % 2 == 0 and y0 % 2 == 0 and x0 <= xs.min() - 1 and y0 <= ys.min() - 1
    assert x1 >= xs.max() + 3 and y1 >= ys.max() + 3 and (x1 - x0) * (y1 - y0) < 0.9 * m.size
    assert mask_box(np.zeros_like(m)) is None
    face_u8 = cv2.convertScaleAbs(out.face[0], alpha=255.0)
    interpolation = cv2.INTER_CUBIC if abs(np.linalg.det(aligned.matrix[:, :2])) >= 1 else cv2.INTER_LINEAR
    warped, roi = warp_from_aligned(face_u8, aligned.matrix, astronaut.shape, interpolation)
    weight, _ = warp_from_aligned(m, aligned.matrix, astronaut.shape)
    expected = astronaut.copy()
    expected[roi.slices()] = cv2.blendLinear(warped, expected[roi.slices()], weight, 1.0 - weight)
    frame = astronaut.copy()
    box_weight, sl = _merge(frame, aligned, out, settings)
    assert np.abs(frame.astype(int) - expected).max() <= 1
    assert (frame != expected).mean() < 0.01
    full = np.zeros(astronaut.shape[:2], np.float32)
    full[sl] = box_weight
    assert box_weight.size < weight.size and np.isclose(full.sum(), weight.sum(), rtol=1e-4)


def test_keep_leaves_the_users_pixels_exactly_and_the_rest_swapped(astronaut, swapped):
    """The generic keep input (the occlusion stage's mask): where it is 1 the frame is exactly the user's, even
    though the swap covers that place; the rest of the face is still swapped as without it."""
    aligned, out = swapped
    r = out.face.shape[1]
    keep = np.zeros((r, r), np.float32)
    keep[r // 3: r // 2, r // 4: 3 * r // 4] = 1.0  # a band over the eyes
    plain, kept = astronaut.copy(), astronaut.copy()
    _merge(plain, aligned, out, MergeSettings(color="none"))
    merger = Merger(MergeSettings(color="none"), mask_smoothing=1.0, color_smoothing=1.0)
    merger.merge(kept, 0, aligned.image, aligned.matrix, out.face[0], out.face_mask[0], out.celeb_mask[0],
                 aligned.aligned_landmarks68, 1.0, keep)
    from realtime.face.alignment import warp_from_aligned

    band, roi = warp_from_aligned(keep, aligned.matrix, astronaut.shape)
    full = np.zeros(astronaut.shape[:2], np.float32)
    full[roi.slices()] = band
    core = full > 0.999
    assert core.sum() > 100
    assert np.array_equal(kept[core], astronaut[core]), "pixels under keep = 1 were painted"
    assert (plain[core] != astronaut[core]).any(1).mean() > 0.5, "the swap did cover that band without keep"
    elsewhere = (full == 0) & (plain != astronaut).any(2)
    assert np.array_equal(kept[elsewhere], plain[elsewhere]), "keep changed pixels away from its mask"


def test_a_face_box_outside_the_frame_blends_nothing_and_returns_matching_shapes(astronaut, swapped):
    """A face whose kept mask leaves only a sliver beyond the frame's edge: the returned weight fits its slices."""
    aligned, out = swapped
    frame = astronaut.copy()
    far = aligned.matrix.copy()
    far[0, 2] += 5000.0  # frame -> aligned: the crop now lies far left of the frame, at the same height
    merger = Merger(MergeSettings(), mask_smoothing=1.0, color_smoothing=1.0)
    weight, sl = merger.merge(frame, 0, aligned.image, far, out.face[0], out.face_mask[0], out.celeb_mask[0])
    assert weight.shape == frame[sl].shape[:2]
    assert np.array_equal(frame, astronaut)
