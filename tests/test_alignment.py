"""Alignment (contract 2) on real faces with real MediaPipe landmarks."""

import cv2
import numpy as np
import pytest

from realtime import alignment as al
from tests.fixtures.faces import shared_path

SIZE = 256
# Eye centres must land within 5% of the template's inter-ocular distance of the template's eyes.
EYE_TOLERANCE = 0.05


def _interocular(face_type: str, size: int) -> float:
    right, left = al.template_eye_centres(face_type, size)
    return float(np.linalg.norm(left - right))


def _eye_error(frame, landmarker, face_type):
    face = landmarker.detect(frame)[0]
    aligned = al.align_face(frame, face.landmarks68, SIZE, face_type)
    err = np.linalg.norm(al.eye_centres(aligned.aligned_landmarks68) - al.template_eye_centres(face_type, SIZE), axis=1)
    return float(err.max()) / _interocular(face_type, SIZE)


@pytest.mark.parametrize("face_type", list(al.FACE_TYPES))
def test_eye_centres_land_on_template_for_every_face_type(package_faces, still_landmarker, face_type):
    for name, frame in package_faces.items():
        assert _eye_error(frame, still_landmarker, face_type) < EYE_TOLERANCE, name


def test_eye_centres_on_shared_stills(still_landmarker):
    folder = shared_path("stills/london")
    files = sorted(folder.glob("*.jpg"))[:12] + sorted(shared_path("stills/lisa").glob("*.jpg"))
    errors = [_eye_error(cv2.imread(str(f)), still_landmarker, "whole_face") for f in files]
    assert max(errors) < EYE_TOLERANCE, dict(zip([f.name for f in files], errors))


def test_larger_face_types_contain_smaller_ones(astronaut, still_landmarker):
    lmk = still_landmarker.detect(astronaut)[0].landmarks68
    areas = []
    for face_type in al.FACE_TYPES:
        roi = al.aligned_roi(al.align_matrix(lmk, SIZE, face_type), SIZE, (10_000, 10_000))
        areas.append((roi.x1 - roi.x0) * (roi.y1 - roi.y0))
    assert areas == sorted(areas) and areas[0] < areas[-1]


def test_points_round_trip_exactly(astronaut, still_landmarker):
    lmk = still_landmarker.detect(astronaut)[0].landmarks68
    matrix = al.align_matrix(lmk, SIZE, "whole_face")
    back = al.transform_points(al.transform_points(lmk, matrix), al.invert(matrix))
    np.testing.assert_allclose(back, lmk, atol=1e-6)


def test_warp_and_unwarp_round_trip_within_a_few_grey_levels(grace_hopper, still_landmarker):
    face = still_landmarker.detect(grace_hopper)[0]
    # at 512 px the crop samples the face at about its native scale, so the round trip loses little
    size = 512
    aligned = al.align_face(grace_hopper, face.landmarks68, size, "whole_face")
    back, roi = al.warp_from_aligned(aligned.image, aligned.matrix, grace_hopper.shape)
    assert not roi.empty and back.shape[:2] == (roi.y1 - roi.y0, roi.x1 - roi.x0)
    # compare on the face itself (hull mask, eroded away from the crop's resampled border)
    mask, _ = al.warp_from_aligned(al.hull_mask(aligned.aligned_landmarks68, size), aligned.matrix, grace_hopper.shape)
    inner = cv2.erode((mask > 0.99).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert inner.sum() > 5000
    diff = np.abs(back.astype(np.int16) - grace_hopper[roi.slices()].astype(np.int16))[inner]
    assert diff.mean() < 3.0, diff.mean()
    # the warp back only touches the ROI: its size is bounded by the crop's footprint
    assert (roi.x1 - roi.x0) * (roi.y1 - roi.y0) < grace_hopper.shape[0] * grace_hopper.shape[1]


def test_rotated_and_scaled_copy_aligns_to_the_same_crop(astronaut, still_landmarker):
    lmk = still_landmarker.detect(astronaut)[0].landmarks68
    reference = al.align_face(astronaut, lmk, SIZE, "whole_face")
    h, w = astronaut.shape[:2]
    moved_matrix = cv2.getRotationMatrix2D((w / 2, h / 2), 25.0, 0.8)
    moved_matrix[:, 2] += (30, -20)
    moved = cv2.warpAffine(astronaut, moved_matrix, (w, h), borderMode=cv2.BORDER_REFLECT)
    other = al.align_face(moved, still_landmarker.detect(moved)[0].landmarks68, SIZE, "whole_face")
    mask = al.hull_mask(reference.aligned_landmarks68, SIZE) > 0.5
    diff = np.abs(other.image.astype(np.int16) - reference.image.astype(np.int16))[mask].mean()
    unrelated = np.abs(np.roll(reference.image, 12, axis=1).astype(np.int16) - reference.image.astype(np.int16))[mask].mean()
    assert diff < 8.0 and diff < 0.5 * unrelated, (diff, unrelated)
    shift = np.linalg.norm(other.aligned_landmarks68 - reference.aligned_landmarks68, axis=1)
    assert np.median(shift) < 0.01 * SIZE


def test_masks_cover_the_face_and_its_features(astronaut, still_landmarker):
    face = al.align_face(astronaut, still_landmarker.detect(astronaut)[0].landmarks68, SIZE, "whole_face")
    hull = al.hull_mask(face.aligned_landmarks68, SIZE)
    features = al.eyes_mouth_mask(face.aligned_landmarks68, SIZE)
    assert hull.dtype == np.float32 and 0.2 < hull.mean() < 0.8
    assert 0.02 < features.mean() < hull.mean()
    # the eye centres and mouth centre are inside both masks; the crop's corners are not
    for x, y in np.vstack([al.eye_centres(face.aligned_landmarks68), face.aligned_landmarks68[48:60].mean(0)[None]]):
        assert hull[int(y), int(x)] > 0.5 and features[int(y), int(x)] > 0.5
    assert hull[0, 0] == 0 and hull[-1, -1] == 0


def test_umeyama_recovers_a_known_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (33, 2))
    angle, scale, shift = np.deg2rad(17.0), 1.7, np.array([5.0, -3.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    mat = al.umeyama_similarity(src, src @ rot.T + shift)
    np.testing.assert_allclose(mat[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(mat[:, 2], shift, atol=1e-9)


def test_unknown_face_type_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="whole_face"):
        al.align_matrix(np.zeros((68, 2)), SIZE, "fullface")
