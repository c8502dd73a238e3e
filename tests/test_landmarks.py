"""MediaPipe landmarks on real faces: formats, empty frames, several faces, stable ids, pose."""

import cv2
import numpy as np
import pytest

from realtime.face.landmarks import FaceLandmarker, to_bgr


def test_finds_one_face_with_478_points_inside_the_frame(astronaut, still_landmarker):
    faces = still_landmarker.detect(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert face.mesh.shape == (478, 3) and face.landmarks68.shape == (68, 2)
    x0, y0, x1, y1 = face.bbox
    assert 0 <= x0 < x1 <= astronaut.shape[1] and 0 <= y0 < y1 <= astronaut.shape[0]
    assert 60 < face.size < 300
    assert face.confidence is not None and face.confidence > 0.5


def test_frame_without_a_face_gives_an_empty_list(still_landmarker):
    assert still_landmarker.detect(np.full((240, 320, 3), 127, np.uint8)) == []


@pytest.mark.parametrize(
    "convert",
    [
        lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2GRAY),
        lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)[:, :, None],
        lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2BGRA),
        lambda im: np.ascontiguousarray(im[3:-2, 1:]),  # odd sizes
        lambda im: cv2.resize(im, None, fx=6.0, fy=6.0),  # very large (3072 px): downscaled for the detector
    ],
    ids=["gray", "gray1", "bgra", "odd", "large"],
)
def test_formats_and_sizes_find_the_same_face(astronaut, still_landmarker, convert):
    reference = still_landmarker.detect(astronaut)[0]
    frame = convert(astronaut)
    faces = still_landmarker.detect(frame)
    assert len(faces) == 1
    scale = frame.shape[1] / astronaut.shape[1] if frame.shape[1] > astronaut.shape[1] else 1.0
    offset = np.array([1.0, 3.0]) if frame.shape[:2] == (astronaut.shape[0] - 5, astronaut.shape[1] - 1) else 0.0
    expected = reference.landmarks68 * scale - offset
    err = np.median(np.linalg.norm(faces[0].landmarks68 - expected, axis=1)) / (reference.size * scale)
    assert err < 0.03


@pytest.mark.parametrize("bad", [np.zeros((0, 0, 3), np.uint8), np.zeros((64, 64, 3), np.float32), np.zeros((8, 8, 2), np.uint8)])
def test_unusable_frames_are_refused_with_a_clear_message(bad):
    with pytest.raises(ValueError, match="frame"):
        to_bgr(bad)


def test_two_faces_in_one_frame_keep_their_ids_across_frames(astronaut, grace_hopper):
    a = cv2.resize(astronaut[40:440, 60:460], (320, 320))
    g = cv2.resize(grace_hopper[60:460, 56:456], (320, 320))
    frame = np.hstack([a, g])
    with FaceLandmarker(max_faces=4) as video:
        first = {f.face_id: f.bbox[0] for f in video.detect(frame)}
        assert len(first) == 2
        shifted = np.roll(frame, 6, axis=1)
        second = {f.face_id: f.bbox[0] for f in video.detect(shifted)}
    assert set(second) == set(first)
    for fid in first:  # each id follows its own face (moved right by 6 px), not the other one
        assert abs(second[fid] - first[fid] - 6) < 6


def test_mirrored_face_mirrors_yaw_and_roll(grace_hopper, still_landmarker):
    face = still_landmarker.detect(grace_hopper)[0]
    turned = cv2.warpAffine(grace_hopper, cv2.getRotationMatrix2D((256, 300), -15, 1.0), (512, 600))
    rolled = still_landmarker.detect(turned)[0]
    assert rolled.roll - face.roll == pytest.approx(15, abs=4)
    mirrored = still_landmarker.detect(np.ascontiguousarray(turned[:, ::-1]))[0]
    assert mirrored.roll == pytest.approx(-rolled.roll, abs=4)
    assert mirrored.yaw == pytest.approx(-rolled.yaw, abs=5)
    assert abs(face.pitch) < 25 and abs(face.yaw) < 15
