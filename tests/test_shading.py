"""The one-photo swap's shading match on a real face: skin tone and light follow the user, detail stays."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.face.alignment import align_matrix, transform_points, warp_to_aligned
from realtime.face.regions import face_region
from realtime.swap.shading import ShadingMatch

SIZE = 256


def test_the_photo_takes_the_users_tone_and_light_but_keeps_its_detail(still_landmarker, astronaut):
    face = still_landmarker.detect(astronaut)[0]
    m = align_matrix(face.landmarks68, SIZE, "full")
    photo = warp_to_aligned(astronaut, m, SIZE)
    pts = transform_points(face.points, m)
    # the "user": the same face, darker, warmer, and lit from the left (a horizontal light gradient)
    light = np.linspace(1.0, 0.45, SIZE, dtype=np.float32)[None, :, None]
    user = np.clip(photo.astype(np.float32) * light * np.float32([0.55, 0.7, 0.9]), 0, 255).astype(np.uint8)
    everywhere = np.ones((SIZE, SIZE), np.float32)
    matched = ShadingMatch(SIZE).apply(photo.astype(np.float32) / 255, user, pts, everywhere, 0.5)
    skin = face_region(pts, SIZE, 0.5) > 0.5
    left, right = skin.copy(), skin.copy()
    left[:, SIZE // 2:], right[:, : SIZE // 2] = False, False
    for part in (left, right):  # each half of the face has the user's mean colour (within 8%)
        want = user[part].mean(0)
        got = matched[part].mean(0) * 255
        assert np.all(np.abs(got - want) < 0.08 * want + 2), (got, want)
    # the detail (a high-pass) is the photo's, scaled, not blurred away
    hp = lambda im: im - cv2.GaussianBlur(im, (0, 0), 2)  # noqa: E731
    g_photo = hp(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY).astype(np.float32))[skin]
    g_out = hp(cv2.cvtColor((matched * 255).astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(np.float32))[skin]
    assert np.corrcoef(g_photo, g_out)[0, 1] > 0.9


def test_no_skin_means_no_change(astronaut):
    photo = cv2.resize(astronaut, (SIZE, SIZE)).astype(np.float32) / 255
    pts = np.zeros((468, 2), np.float32)  # a degenerate mesh: no skin region at all
    everywhere = np.ones((SIZE, SIZE), np.float32)
    ratio = ShadingMatch(SIZE).ratio(photo, (photo * 128).astype(np.uint8), pts, everywhere, 0.5)
    assert np.allclose(ratio, 1.0)


def test_a_uint8_face_is_matched_like_a_float_one_and_only_inside_the_box(still_landmarker, astronaut):
    face = still_landmarker.detect(astronaut)[0]
    m = align_matrix(face.landmarks68, SIZE, "full")
    photo = warp_to_aligned(astronaut, m, SIZE)
    pts = transform_points(face.points, m)
    user = (photo * np.float32([0.6, 0.7, 0.8])).astype(np.uint8)
    everywhere = np.ones((SIZE, SIZE), np.float32)
    as_float = ShadingMatch(SIZE).apply(photo.astype(np.float32) / 255, user, pts, everywhere, 0.5) * 255
    box = (slice(40, 200), slice(30, 220))
    as_u8 = ShadingMatch(SIZE).apply(photo.copy(), user, pts, everywhere, 0.5, box)
    assert as_u8.dtype == np.uint8
    assert np.abs(as_u8[box].astype(np.float32) - as_float[box]).max() <= 1.0
    outside = np.ones((SIZE, SIZE), bool)
    outside[box] = False
    assert np.array_equal(as_u8[outside], photo[outside])


def test_the_ratio_of_one_face_is_smoothed_over_frames_and_follows_a_change_of_light(still_landmarker, astronaut):
    face = still_landmarker.detect(astronaut)[0]
    m = align_matrix(face.landmarks68, SIZE, "full")
    photo = warp_to_aligned(astronaut, m, SIZE)
    pts = transform_points(face.points, m)
    everywhere = np.ones((SIZE, SIZE), np.float32)
    bright, dark = photo, (photo * np.float32(0.5)).astype(np.uint8)
    match = ShadingMatch(SIZE, smoothing=0.3)
    level = lambda user, key: float(match.ratio(photo, user, pts, everywhere, 0.5, key).mean())  # noqa: E731
    start = level(bright, key=0)
    assert abs(start - 1.0) < 0.05
    first = level(dark, key=0)  # the light drops: the smoothed ratio moves 0.3 of the way
    assert abs(first - (start + 0.3 * (0.5 - start))) < 0.05
    for _ in range(20):
        settled = level(dark, key=0)
    assert abs(settled - 0.5) < 0.05  # and follows within a second
    assert abs(level(dark, key=None) - 0.5) < 0.05  # no key: not smoothed
    assert abs(level(bright, key=1) - 1.0) < 0.05  # another face has its own history


def test_the_light_model_carries_the_light_but_not_the_users_relief(still_landmarker, astronaut, grace_hopper):
    """The astronaut's photo on Grace Hopper (her own relief, her own light: brighter to the right of the crop than
    the astronaut's): the 'light' model's ratio is a plane in log space (no relief in it) that still carries the
    left-right change of light; 'blend' lies between it and the ratio as it is."""
    faces = []
    for image in (astronaut, grace_hopper):
        face = still_landmarker.detect(image)[0]
        m = align_matrix(face.landmarks68, SIZE, "full")
        faces.append((warp_to_aligned(image, m, SIZE), transform_points(face.points, m)))
    (photo, _), (user, pts) = faces
    everywhere = np.ones((SIZE, SIZE), np.float32)
    r = {model: np.log(ShadingMatch(SIZE, model=model).ratio(photo, user, pts, everywhere, 0.5)).mean(-1)
         for model in ("ratio", "light", "blend")}
    skin = face_region(pts, SIZE, 0.5) > 0.5
    third = SIZE // 3
    for model, log_ratio in r.items():  # measured: 0.11 (ratio), 0.13 (light)
        left, right = log_ratio[:, :third][skin[:, :third]].mean(), log_ratio[:, -third:][skin[:, -third:]].mean()
        assert right - left > 0.05, (model, left, right)
        assert abs(log_ratio[skin].mean() - r["ratio"][skin].mean()) < 0.03  # the same overall tone
    ys, xs = np.nonzero(skin)
    basis = np.stack([np.ones_like(xs), xs, ys], 1).astype(np.float64)

    def relief(log_ratio):  # what is left of the ratio over the skin once the best plane is taken out
        values = log_ratio[skin].astype(np.float64)
        return float(np.std(values - basis @ np.linalg.lstsq(basis, values, rcond=None)[0]))

    rel = {m: relief(a) for m, a in r.items()}
    assert rel["light"] < 0.005 < rel["ratio"] and rel["light"] < rel["blend"] < rel["ratio"], rel
    with pytest.raises(ValueError, match="ratio, light, blend"):
        ShadingMatch(SIZE, model="flat")
