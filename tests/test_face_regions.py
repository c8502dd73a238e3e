"""Face regions for the one-photo swap, on real faces: the forehead stops under a fringe, the mouth
opening is found on an open smile, the photo's skin is carried past its outline."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.face.alignment import align_matrix, transform_points, warp_to_aligned
from realtime.face.regions import (
    BROW_PEAKS,
    extend_beyond,
    face_region,
    forehead_cut,
    FACE_OVAL,
    OUTER_LIPS,
    hair_over_forehead,
    interior_weights,
    mouth_hole,
    mouth_openness,
    not_skin_past_outline,
)

SIZE = 256
SHIPPED_PHOTO = Path(__file__).resolve().parents[1] / "models" / "photos" / "london_063.jpg"


def _aligned(image, landmarker):
    face = landmarker.detect(image)[0]
    m = align_matrix(face.landmarks68, SIZE, "full")
    return warp_to_aligned(image, m, SIZE), transform_points(face.points, m)


def _band_share(hair, points, keep):
    """Share of the forehead band (cut to brow peaks, inside the oval) marked as hair."""
    top, bottom = int(np.ceil(forehead_cut(points, keep))), int(points[BROW_PEAKS, 1].max())
    region = face_region(points, SIZE, keep=1.0)[top:bottom] > 0.5
    return float(hair[top:bottom][region].mean())


def test_a_fringe_is_hair_and_a_bare_forehead_is_not(still_landmarker, astronaut):
    crop, pts = _aligned(astronaut, still_landmarker)  # the astronaut's fringe reaches her brows
    assert _band_share(hair_over_forehead(crop, pts, 0.9), pts, 0.9) > 0.7
    bare = cv2.imread(str(SHIPPED_PHOTO))  # the shipped sitter's forehead is bare up to his hairline
    crop, pts = _aligned(bare, still_landmarker)
    assert _band_share(hair_over_forehead(crop, pts, 0.5), pts, 0.5) < 0.1


def test_a_real_speaker_with_a_fringe(still_landmarker):
    from tests.fixtures.faces import shared_path

    cap = cv2.VideoCapture(str(shared_path("video/grid_s4.mp4")))
    ok, frame = cap.read()
    cap.release()
    assert ok
    crop, pts = _aligned(frame, still_landmarker)
    assert _band_share(hair_over_forehead(crop, pts, 0.5), pts, 0.5) > 0.7


def test_the_region_stops_at_the_forehead_cut_and_grows_over_the_outline(still_landmarker, grace_hopper):
    _, pts = _aligned(grace_hopper, still_landmarker)
    region = face_region(pts, SIZE, keep=0.5)
    cut = forehead_cut(pts, 0.5)
    assert region[: int(cut) - 1].max() == 0.0 and region[int(cut) + 2 :].max() == 1.0
    grown = face_region(pts, SIZE, keep=0.5, grow=6.0)
    assert grown.sum() > region.sum() * 1.03 and (grown >= region - 1e-6).all()
    assert forehead_cut(pts, 0.9) < forehead_cut(pts, 0.5) < pts[BROW_PEAKS, 1].mean()


def test_the_mouth_opening_of_an_open_smile(still_landmarker, astronaut, grace_hopper):
    _, open_pts = _aligned(astronaut, still_landmarker)  # smiling, teeth showing
    _, closed_pts = _aligned(grace_hopper, still_landmarker)
    assert mouth_openness(open_pts) > 0.1 > mouth_openness(closed_pts)
    hole = mouth_hole(open_pts, SIZE)
    inside = mouth_hole(open_pts, SIZE, shrink=4.0)
    assert hole.sum() > 200 and 0 < inside.sum() < hole.sum() and (inside <= hole + 1e-6).all()
    assert mouth_hole(closed_pts, SIZE).sum() < 0.2 * hole.sum()


def _first_frame(name: str) -> np.ndarray:
    from tests.fixtures.faces import shared_path

    cap = cv2.VideoCapture(str(shared_path(f"video/{name}.mp4")))
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame


def test_hair_framing_the_cheeks_is_not_skin_past_the_outline_and_a_bare_cheek_is(still_landmarker):
    """GRID s4's curls hang beside her cheeks; GRID s27's cheeks meet the background and his ears."""
    shares = {}
    for name in ("grid_s4", "grid_s27"):
        crop, pts = _aligned(_first_frame(name), still_landmarker)
        grow = 0.02 * SIZE
        not_skin = not_skin_past_outline(crop, pts, grow, keep=0.5)
        oval, grown = face_region(pts, SIZE, keep=0.5), face_region(pts, SIZE, keep=0.5, grow=grow)
        assert not_skin[oval > 0.99].max() == 0.0 and not_skin[grown == 0].max() == 0.0  # the band only
        rows = np.arange(SIZE)[:, None]
        cheeks = (grown - oval > 0.5) & (rows > pts[[33, 263], 1].mean()) & (rows < pts[[61, 291], 1].mean())
        shares[name] = float(not_skin[cheeks].mean())
    # measured: 1.00 and 0.33
    assert shares["grid_s4"] > 0.9 and shares["grid_s27"] < 0.5, shares


@pytest.mark.parametrize("seed", [0, 1])
def test_skin_is_carried_past_the_outline_from_the_nearest_inside_pixel(seed):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (60, 80, 3), np.uint8)
    inside = np.zeros((60, 80), np.float32)
    cv2.circle(inside, (40, 30), 18, 1.0, -1)
    out = extend_beyond(image, inside)
    assert np.array_equal(out[inside > 0.5], image[inside > 0.5])
    ys, xs = np.nonzero(inside > 0.5)
    for y, x in [(2, 3), (30, 75), (58, 40), (10, 60)]:
        d = np.hypot(ys - y, xs - x)
        nearest = d.min()
        # the colour came from an inside pixel at (nearly) the nearest distance
        matches = [(yy, xx) for yy, xx in zip(ys, xs) if (image[yy, xx] == out[y, x]).all()]
        assert matches and min(np.hypot(yy - y, xx - x) for yy, xx in matches) <= nearest + 1.5


def test_interior_weights_hold_the_outline_and_the_lips_and_free_the_eyes_and_nose(still_landmarker, grace_hopper):
    _, pts = _aligned(grace_hopper, still_landmarker)
    w = interior_weights(pts)
    assert w.shape == (len(pts),) and w.dtype == np.float32 and 0.0 <= w.min() and w.max() <= 1.0
    assert w[FACE_OVAL].max() == 0.0 and w[OUTER_LIPS].max() == 0.0
    assert w[[4, 1, 6, 168]].min() == 1.0  # nose tip, nose, between the eyes
    assert w[[33, 133, 263, 362]].min() > 0.9  # eye corners
    assert (w[:468] > 0.5).sum() > 100  # most of the inner face may move
