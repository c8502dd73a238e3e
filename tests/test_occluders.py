"""The two families of synthetic occluders: the eval's (measure/occluders.py) and training's (training/occlusion_synth.py)."""

from __future__ import annotations

import numpy as np
import pytest

from measure.occluders import EVAL_SEED_BASE, KINDS, Occluder, OccluderTrack, eval_textures
from training.occlusion_synth import TRAIN_SEED_LIMIT, TextureBank, augment_and_resize, check_seed, synthesize


@pytest.fixture(scope="module")
def astronaut_face(astronaut, still_landmarker):
    return astronaut, still_landmarker.detect(astronaut)[0].landmarks68


def test_seed_ranges_are_disjoint():
    assert TRAIN_SEED_LIMIT <= EVAL_SEED_BASE
    with pytest.raises(ValueError):
        check_seed(EVAL_SEED_BASE)
    with pytest.raises(ValueError):
        Occluder("hand", TRAIN_SEED_LIMIT - 1, [(120, 150, 200)])


def test_eval_textures_are_package_pictures_not_faces():
    textures = eval_textures()
    assert len(textures) >= 5 and all(t.ndim == 3 and t.dtype == np.uint8 for t in textures)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_covers_the_real_face_and_is_deterministic(kind, astronaut_face):
    frame, lmk = astronaut_face
    track = OccluderTrack(kind, segment=20)
    a = track.render(10, frame, lmk)
    b = OccluderTrack(kind, segment=20).render(10, frame, lmk)
    assert a is not None
    occluded, label = a
    assert np.array_equal(occluded, b[0]) and np.array_equal(label, b[1])
    x0, y0 = lmk.min(0).astype(int)
    x1, y1 = lmk.max(0).astype(int)
    on_face = label[y0:y1, x0:x1].mean()
    assert on_face > 0.01, f"{kind} covers {on_face:.3f} of the face box at mid-segment"
    # the frame changed where the label is (the occluder is drawn), and nowhere far from it
    changed = np.abs(occluded.astype(int) - frame.astype(int)).max(2) > 0
    assert changed[label].mean() > 0.5
    assert track.render(10, frame, None) is None


def test_occluders_move_over_their_segment(astronaut_face):
    frame, lmk = astronaut_face
    track = OccluderTrack("hand", segment=30)
    first, middle = track.render(0, frame, lmk)[1], track.render(12, frame, lmk)[1]
    assert (first ^ middle).mean() > 0.01


def test_training_synthesis_labels_what_it_pastes(astronaut_face):
    frame, lmk = astronaut_face
    from realtime.face.alignment import align_face

    face = align_face(frame, lmk, 128, "full")
    rng = np.random.default_rng(0)
    bank = TextureBank(rng.integers(0, 255, (8, 64, 64, 3), dtype=np.uint8),
                       np.full((4, 24, 24, 3), (120, 150, 200), np.uint8))
    labelled = 0
    for seed in range(12):
        image, label = synthesize(face.image, face.aligned_landmarks68, bank, np.random.default_rng(seed))
        assert image.shape == face.image.shape and label.shape == (128, 128)
        changed = np.abs(image.astype(int) - face.image.astype(int)).max(2) > 8
        if label.any():
            labelled += 1
            assert changed[label > 0.5].mean() > 0.5  # what is labelled was pasted
        small, target, weight = augment_and_resize(image, label, None, 64, np.random.default_rng(seed))
        assert small.shape == (64, 64, 3) and target.shape == weight.shape == (64, 64)
        assert 0.0 <= target.min() and target.max() <= 1.0
    assert labelled >= 8


def test_drawn_facial_hair_stays_below_the_nose_and_is_not_labelled(astronaut_face):
    from realtime.face.alignment import align_face
    from training.occlusion_synth import facial_hair

    frame, lmk = astronaut_face
    face = align_face(frame, lmk, 128, "full")
    pts = face.aligned_landmarks68
    changed = np.zeros((128, 128), bool)
    for seed in range(6):
        out = facial_hair(face.image, pts, np.random.default_rng(seed))
        changed |= np.abs(out.astype(int) - face.image.astype(int)).max(2) > 10
    assert changed.sum() > 50
    assert not changed[: int(pts[30, 1]) - 2].any(), "facial hair drawn above the nose tip"
