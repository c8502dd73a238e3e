"""The one-photo swap on real faces: identity moves to the photo's, the user's mouth stays the user's,
untouched frames stay untouched, and it runs through the same processor as a trained model."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from measure.evaluate import read_frames
from realtime.face.alignment import align_matrix, transform_points, warp_to_aligned
from realtime.face.regions import INNER_LIPS, face_region, forehead_cut
from realtime.swap.photo_swapper import MOUTH_SHRINK, PhotoSwapper
from realtime.processor import FaceSwapProcessor
from realtime.frames.sources import Frame
from realtime.swap.swapper import SwapResult


@pytest.fixture(scope="module")
def hopper_swapper(hopper_photo):
    return PhotoSwapper(hopper_photo).prepare()


def _run(processor, frames):
    """Each frame through the processor in order (media time at 25 fps); the outputs."""
    return [processor.process(Frame(f, i, 0.0, 0.0, i / 25.0), {})[0] for i, f in enumerate(frames)]


def test_the_swapper_keeps_the_shared_interface(hopper_swapper, hopper_photo, astronaut, still_landmarker):
    s = hopper_swapper
    assert s.name == "grace_hopper.png" and s.path == hopper_photo and s.identity is None and s.consent is None
    assert s.needs_mesh and s.warmup_ms > 0 and "reference grace_hopper.png" in s.describe()
    assert "no identity given" in s.describe() and "no consent record given" in s.describe()
    r = s.resolution
    face = still_landmarker.detect(astronaut)[0]
    m = align_matrix(face.landmarks68, r, s.face_type)
    crop = warp_to_aligned(astronaut, m, r)
    mesh = transform_points(face.points, m).astype(np.float32)
    out = s.get(np.stack([crop, crop]), np.stack([mesh, mesh]))
    assert isinstance(out, SwapResult)
    assert out.face.shape == (2, r, r, 3) and out.face_mask.shape == out.celeb_mask.shape == (2, r, r)
    assert out.face.dtype == np.uint8  # the merge takes the sampled pixels as they are
    for arr in (out.face_mask, out.celeb_mask):
        assert arr.dtype == np.float32 and 0.0 <= arr.min() and arr.max() <= 1.0
    assert np.array_equal(out.face[0], out.face[1])
    # the mask: the face, not the hair above the forehead cut, not the corner of the crop
    cut = int(forehead_cut(mesh))
    assert out.face_mask[0, : cut - 1].max() == 0.0 and out.face_mask[0, 0, 0] == 0.0
    nose = np.round(mesh[4]).astype(int)
    assert out.face_mask[0, nose[1], nose[0]] == 1.0 and out.celeb_mask[0, nose[1], nose[0]] > 0.9
    # the astronaut smiles with her teeth showing: her mouth opening is left out of the swap
    lips = np.zeros((r, r), np.uint8)
    cv2.fillPoly(lips, [np.round(mesh[INNER_LIPS]).astype(np.int32)], 1)
    k = 2 * int(np.ceil(MOUTH_SHRINK * r)) + 3  # the opening is drawn MOUTH_SHRINK * R inside the lips
    inner = cv2.erode(lips, np.ones((k, k), np.uint8)).astype(bool)
    assert inner.sum() > 50 and out.face_mask[0][inner].max() < 0.05
    with pytest.raises(ValueError, match="meshes"):
        s.get(crop[None], mesh[None, :68])


def test_a_photo_moves_the_identity_toward_its_person(astronaut_photo, grace_hopper_video, still_landmarker):
    """Photo of person A (the astronaut) on a video of person B (Grace Hopper): the output is nearer A."""
    from measure.eval_identity import IdentityEncoder

    encoder = IdentityEncoder()
    a_image = cv2.imread(str(astronaut_photo))
    a = encoder.embed(a_image, still_landmarker.detect(a_image)[0].landmarks68)
    frames = list(read_frames(grace_hopper_video, 12))
    b = np.mean([encoder.embed(f, still_landmarker.detect(f)[0].landmarks68) for f in frames[4:]], 0)
    processor = FaceSwapProcessor([PhotoSwapper(astronaut_photo).prepare()])
    outputs = _run(processor, frames)
    processor.close()
    before, after, from_b = [], [], []
    for inp, out in zip(frames[4:], outputs[4:]):
        faces_in, faces_out = still_landmarker.detect(inp), still_landmarker.detect(out)
        assert faces_in and faces_out
        before.append(np.linalg.norm(encoder.embed(inp, faces_in[0].landmarks68) - a))
        e_out = encoder.embed(out, faces_out[0].landmarks68)
        after.append(np.linalg.norm(e_out - a))
        from_b.append(np.linalg.norm(e_out - b))
    # measured: 0.67 -> 0.57 to A (every frame nearer), 0.35 away from B's own descriptor
    assert max(after) < min(before) and np.mean(after) < np.mean(before) - 0.05, (before, after)
    assert np.mean(from_b) > 0.25


def test_the_open_mouth_comes_from_the_input(hopper_swapper, astronaut, still_landmarker):
    """Grace Hopper's closed-mouth photo on the astronaut's open smile: her teeth stay hers."""
    processor = FaceSwapProcessor([hopper_swapper])
    out = _run(processor, [astronaut] * 4)[-1]
    processor.close()
    face = still_landmarker.detect(astronaut)[0]
    lips = np.zeros(astronaut.shape[:2], np.uint8)
    cv2.fillPoly(lips, [np.round(face.points[INNER_LIPS]).astype(np.int32)], 1)
    inner = cv2.erode(lips, np.ones((3, 3), np.uint8)).astype(bool)
    diff = np.abs(out.astype(np.float32) - astronaut.astype(np.float32)).mean(-1)
    cheek = np.round(face.points[205]).astype(int)
    assert inner.sum() > 50
    assert diff[inner].mean() < 3.0  # the mouth interior (teeth) is the input's
    assert diff[cheek[1] - 3 : cheek[1] + 4, cheek[0] - 3 : cheek[0] + 4].mean() > 5.0  # the cheek is swapped


def test_bypass_and_faceless_frames_are_untouched(hopper_swapper, astronaut):
    processor = FaceSwapProcessor([hopper_swapper])
    empty = np.full((240, 320, 3), (30, 90, 160), np.uint8)
    assert processor.process(Frame(empty, 0, 0.0, 0.0, 0.0), {})[0] is empty
    processor.toggle_bypass()
    assert processor.process(Frame(astronaut, 1, 0.0, 0.0, 0.04), {})[0] is astronaut
    processor.toggle_bypass()
    out, faces = processor.process(Frame(astronaut, 2, 0.0, 0.0, 0.08), {})
    assert faces == 1 and out is not astronaut and (out != astronaut).any()
    processor.close()


def test_next_and_previous_switch_between_a_photo_and_a_model(hopper_swapper, exported_model, astronaut):
    from realtime.swap.swappers import open_swapper

    model = open_swapper(exported_model).prepare()
    processor = FaceSwapProcessor([hopper_swapper, model], eyes="model")  # the swaps' own eyes: all of each face
    with_photo = processor.process(Frame(astronaut, 0, 0.0, 0.0, 0.0), {})[0]
    assert "astronaut.onnx" in processor.next_model()
    timings: dict[str, float] = {}
    with_model = processor.process(Frame(astronaut, 1, 0.0, 0.0, 0.04), timings)[0]
    assert {"landmarks", "align", "swap", "merge"} <= set(timings)
    assert "grace_hopper.png" in processor.prev_model()
    again = processor.process(Frame(astronaut, 2, 0.0, 0.0, 0.08), {})[0]
    processor.close()
    changed = (with_photo != astronaut).any(-1) | (with_model != astronaut).any(-1)
    assert (with_photo != astronaut).any() and (with_model != astronaut).any()
    between = np.abs(with_photo.astype(int) - with_model.astype(int)).mean(-1)[changed].mean()
    repeat = np.abs(again.astype(int) - with_photo.astype(int)).mean(-1)[changed].mean()
    assert between > 5.0 and repeat < between / 4  # two different swaps; the photo swap again


def test_the_inner_features_take_the_photos_proportions_and_the_expression_stays_the_users(
        hopper_photo, astronaut, still_landmarker):
    from realtime.face.regions import FACE_OVAL, OUTER_LIPS, interior_weights
    from realtime.swap.photo_swapper import frontal_share

    s = PhotoSwapper(hopper_photo, proportions=1.0).prepare()
    r = s.resolution
    face = still_landmarker.detect(astronaut)[0]
    mesh = transform_points(face.points, align_matrix(face.landmarks68, r, s.face_type)).astype(np.float32)[:468]
    assert frontal_share(mesh, s._ref_points, mesh) == 1.0  # both about frontal
    moved = s._with_photo_proportions(0, 1, mesh)  # the first frame is its own neutral
    free = interior_weights(s._ref_points) == 1.0
    assert free.sum() > 50 and np.allclose(moved[free], s._ref_points[free], atol=1e-3)  # the photo's places
    assert np.array_equal(moved[FACE_OVAL], mesh[FACE_OVAL]) and np.array_equal(moved[OUTER_LIPS], mesh[OUTER_LIPS])
    # the user's expression (here: eyes a little lower than their neutral) still moves the photo's points
    lowered = mesh.copy()
    lowered[:, 1] += 1.0
    again = s._with_photo_proportions(0, 1, lowered)  # neutral now half-way (second frame: plain mean)
    assert np.allclose(again[free] - moved[free], [0.0, 0.5], atol=1e-3)
    assert np.array_equal(PhotoSwapper(hopper_photo)._with_photo_proportions(0, 1, mesh), mesh)  # off by default
    # a head turned away (the nose tip moved sideways by 0.8 half face widths: about 24 deg of yaw): no shift
    turned = lowered.copy()
    turned[4, 0] += 0.4 * np.linalg.norm(mesh[234] - mesh[454])
    assert frontal_share(turned, s._ref_points, mesh) == 0.0
    shifted = s._with_photo_proportions(0, 1, turned)
    assert np.array_equal(shifted, turned)


def test_specks_of_slow_convergence_are_kept_and_real_folds_are_hidden(hopper_swapper):
    s = hopper_swapper
    r, n = s.resolution, s.warp.residual.shape[0]
    residual = np.zeros((n, n), np.float32)
    residual[20:22, 20:22] = 5.0  # a speck (4 grid cells)
    residual[60:90, 70:100] = 5.0  # a fold
    s.warp.residual = residual
    mask = np.ones((r, r), np.float32)
    s._hide_folds(mask)
    step = r // n
    assert mask[20 * step : 22 * step, 20 * step : 22 * step].min() == 1.0
    assert mask[62 * step : 88 * step, 72 * step : 98 * step].max() == 0.0
    assert mask.sum() > r * r - (34 * step) ** 2


def test_every_pixel_the_merge_blends_was_sampled(hopper_swapper, astronaut, still_landmarker):
    """The photo is sampled on the box of the user's face region only: the merge's mask (eroded, then
    feathered outward) must stay inside that box, or it would blend unsampled (black) pixels."""
    from realtime.merging.merge import Merger
    from realtime.swap.photo_swapper import BOX_MARGIN, region_box

    s = hopper_swapper
    face = still_landmarker.detect(astronaut)[0]
    m = align_matrix(face.landmarks68, s.resolution, s.face_type)
    out = s.get(warp_to_aligned(astronaut, m, s.resolution)[None], transform_points(face.points, m)[None])
    blend = Merger().mask(0, out.face_mask[0], out.celeb_mask[0], None) > 0
    rows, cols = region_box(out.face_mask[0], BOX_MARGIN)
    sampled = np.zeros_like(blend)
    sampled[rows, cols] = True
    assert blend.any() and not (blend & ~sampled).any()
    assert out.face[0][blend].min(1).max() > 0 and not out.face[0][~sampled].any()


def test_the_crop_matches_the_photos_own_resolution_within_its_bounds(tmp_path, astronaut):
    """No finer than the photo (more pixels would only interpolate it), no coarser than 224 px."""
    from realtime.swap.photo_swapper import MAX_AUTO_RESOLUTION, MIN_AUTO_RESOLUTION

    sizes = {}
    for factor in (0.8, 3.0):
        path = tmp_path / f"astronaut_{factor}.png"
        cv2.imwrite(str(path), cv2.resize(astronaut, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC))
        sizes[factor] = PhotoSwapper(path).resolution
    assert sizes[0.8] == MIN_AUTO_RESOLUTION and sizes[3.0] == MAX_AUTO_RESOLUTION
    assert PhotoSwapper(tmp_path / "astronaut_3.0.png", resolution=192).resolution == 192


def test_the_band_past_the_outline_leaves_hair_framing_the_face_with_band_skin(hopper_photo, still_landmarker):
    """GRID s4 (curls beside her cheeks): band 'all' pastes the photo's skin over them just past her outline,
    band 'skin' leaves them hers; inside her outline both paste the same."""
    from tests.fixtures.faces import shared_path

    cap = cv2.VideoCapture(str(shared_path("video/grid_s4.mp4")))
    ok, frame = cap.read()
    cap.release()
    assert ok
    masks = {}
    for band in ("all", "skin"):
        s = PhotoSwapper(hopper_photo, band=band, landmarker=still_landmarker)
        r = s.resolution
        face = still_landmarker.detect(frame)[0]
        m = align_matrix(face.landmarks68, r, s.face_type)
        mesh = transform_points(face.points, m).astype(np.float32)
        masks[band] = s.get(warp_to_aligned(frame, m, r)[None], mesh[None]).face_mask[0].copy()
    grow = 0.02 * r
    oval, grown = face_region(mesh, r, s.forehead), face_region(mesh, r, s.forehead, grow)
    rows = np.arange(r)[:, None]
    cheeks = (grown - oval > 0.5) & (rows > mesh[[33, 263], 1].mean()) & (rows < mesh[[61, 291], 1].mean())
    assert cheeks.sum() > 20
    assert masks["all"][cheeks].mean() > 0.9 and masks["skin"][cheeks].mean() < 0.1
    inner = oval > 0.99
    assert np.array_equal(masks["all"][inner], masks["skin"][inner])
    with pytest.raises(ValueError, match="band"):
        PhotoSwapper(hopper_photo, band="hair", landmarker=still_landmarker)
