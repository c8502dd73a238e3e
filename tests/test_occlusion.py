"""The occlusion stage on real faces: the shipped model, its mask in the merge, both swap kinds, the eval mode."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from measure.occluders import OccluderTrack
from realtime.merging.occlusion import DEFAULT_OCCLUSION_MODEL, OcclusionModel, OcclusionModelError, open_occlusion

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO / "models" / "photos" / "london_063.jpg"
DEMO = REPO / "models" / "demo.onnx"


@pytest.fixture(scope="module")
def masker():
    return open_occlusion()


@pytest.fixture(scope="module")
def astronaut_landmarks(astronaut, still_landmarker):
    return still_landmarker.detect(astronaut)[0].landmarks68


def test_shipped_model_loads_and_says_what_it_was_trained_on():
    model = OcclusionModel()
    meta = model.metadata
    assert model.path == DEFAULT_OCCLUSION_MODEL and model.path.stat().st_size < 4 * 2**20
    assert model.face_type == "full" and model.resolution % 16 == 0
    prefix = "swapcam.occlusion."
    assert "aligned faces" in meta[prefix + "training_data"]
    for user in ("grid_s26", "grid_s27", "helmet_selfie"):
        assert user in meta[prefix + "never_trained_on"] and user not in meta[prefix + "training_data"]
    assert "Biographical Directory" in meta[prefix + "credits"] and "CC BY" in meta[prefix + "credits"]
    assert int(meta[prefix + "steps"]) > 0 and float(meta[prefix + "training_minutes"]) > 0
    assert "glasses" in meta[prefix + "glasses_handling"]
    prob = model.get(np.full((2, model.resolution, model.resolution, 3), 100, np.uint8))
    assert prob.shape == (2, model.resolution, model.resolution) and prob.dtype == np.float32
    assert 0.0 <= prob.min() and prob.max() <= 1.0


def test_a_missing_or_foreign_model_is_a_clear_error(tmp_path):
    with pytest.raises(OcclusionModelError, match="not found"):
        OcclusionModel(tmp_path / "none.onnx")
    with pytest.raises(OcclusionModelError, match="not an occlusion model"):
        OcclusionModel(DEMO)


def _keep_on_frame(masker, frame, landmarks, face_type="full", size=192):
    """The masker's keep mask for ``frame``'s face, warped back into frame pixels (H, W)."""
    from realtime.face.alignment import align_matrix, warp_from_aligned, warp_to_aligned

    m = align_matrix(landmarks, size, face_type)
    crop = warp_to_aligned(frame, m, size)[None]
    keep = masker.keep_masks(frame, [landmarks], crop, [m], face_type, 1.0)[0]
    assert keep.shape == (size, size)
    warped, roi = warp_from_aligned(keep, m, frame.shape)
    full = np.zeros(frame.shape[:2], np.float32)
    full[roi.slices()] = warped
    return full


@pytest.mark.parametrize("face_type", ["full", "whole_face"])
def test_the_mask_marks_a_hand_on_a_real_face_and_little_of_the_bare_face(masker, astronaut, astronaut_landmarks,
                                                                          face_type):
    """The eval family's hand (never seen in training) over the astronaut's face: the keep mask covers it; on the
    bare face it marks little. whole_face: the mask reaches a swapper of another face type through the frame."""
    from measure.eval_metrics import face_box_mask

    occluded, label = OccluderTrack("hand", segment=20).render(9, astronaut, astronaut_landmarks)
    keep = _keep_on_frame(masker, occluded, astronaut_landmarks, face_type)
    box = face_box_mask(astronaut.shape, astronaut_landmarks, grow=0.0)
    assert (label & box).sum() > 2000
    assert (keep[label & box] > 0.5).mean() > 0.85
    bare = _keep_on_frame(masker, astronaut, astronaut_landmarks, face_type)
    assert (bare[box] > 0.5).mean() < 0.08


def _kept_share(clean, occluded, label, model, masker, frames: int = 4) -> float:
    """Share of the occluder's pixels inside the face (where the swap of the clean frame paints) that the
    swap of the occluded frame leaves as the occluded input showed them (every channel within 8 levels)."""
    from measure.eval_swap import swap_frames

    out = [o for o, _ in swap_frames([occluded] * frames, model, occlusion=masker)][-1]
    region = [w for _, w in swap_frames([clean] * frames, model)][-1] > 0.5
    inside = label & region
    assert inside.sum() > 1000
    same = np.abs(out.astype(int) - occluded.astype(int)).max(2) <= 8
    return float(same[inside].mean())


@pytest.mark.parametrize("model", [PHOTO, DEMO], ids=["one-photo", "demo.onnx"])
@pytest.mark.parametrize("kind", ["hand", "microphone"])
def test_an_occluder_drawn_over_a_real_face_survives_the_swap(masker, astronaut, astronaut_landmarks, model, kind):
    occluded, label = OccluderTrack(kind, segment=20).render(9, astronaut, astronaut_landmarks)
    kept_on = _kept_share(astronaut, occluded, label, model, masker)
    kept_off = _kept_share(astronaut, occluded, label, model, None)
    assert kept_on >= 0.9, f"{kind}: {kept_on:.2f} of the occluder kept with occlusion on"
    assert kept_off < 0.6, f"{kind}: {kept_off:.2f} kept without occlusion: the swap should paint over it"


def test_toggle_switches_the_stage_per_frame(masker, astronaut):
    from realtime.frames.sources import Frame
    from realtime.processor import FaceSwapProcessor
    from realtime.swap.swappers import open_swapper

    processor = FaceSwapProcessor([open_swapper(PHOTO).prepare()], occlusion=masker)
    try:
        timings: dict = {}
        processor.process(Frame(astronaut, 0, 0.0, 0.0, 0.0), timings)
        assert "occlusion" in timings and len(processor.last_keep) == 1
        assert processor.toggle_occlusion() == "occlusion off"
        timings = {}
        processor.process(Frame(astronaut, 1, 0.0, 0.0, 0.04), timings)
        assert "occlusion" not in timings and processor.last_keep == []
        assert processor.toggle_occlusion() == "occlusion on"
    finally:
        processor.close()
    bare = FaceSwapProcessor([open_swapper(PHOTO)])
    try:
        assert "unavailable" in bare.toggle_occlusion() and not bare.occlusion_on
    finally:
        bare.close()


def test_eval_occlusion_mode_on_a_short_real_clip(tmp_path):
    from tests.fixtures.faces import shared_path

    from swapcam.cli import main

    clip = shared_path("video/grid_s27.mp4")
    out = tmp_path / "occ"
    code = main(["eval", str(clip), "--model", str(PHOTO), "--occluders", "hand,glasses_thick", "--max-frames", "16",
                 "--occluder-segment", "16", "--out", str(out), "--no-progress"])
    assert code == 0
    report = json.loads((out / "occlusion.json").read_text())
    assert report["occlusion"] is True and set(report["kinds"]) == {"hand", "glasses_thick"}
    for kind, r in report["kinds"].items():
        assert r["occluder_pixels_in_face"] > 0 and 0.0 <= r["kept_share"] <= 1.0, kind
        assert r["unoccluded_change_ratio"] is not None
    assert report["kinds"]["glasses_thick"]["kept_share"] > 0.8
    # s27 wears glasses: with occlusion on, the clean clip keeps them, so it is changed less than by the full swap
    assert 0.4 < report["clean_change_ratio"] < 0.97
    assert (out / "occlusion_sheet.png").is_file() and "glasses_thick" in (out / "occlusion.md").read_text()


def _frame(name: str, index: int) -> np.ndarray:
    import cv2

    from tests.fixtures.faces import shared_path

    cap = cv2.VideoCapture(str(shared_path(f"video/{name}.mp4")))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame


@pytest.mark.parametrize("name, index, glasses", [("grid_s27", 60, True), ("helmet_selfie", 38, True),
                                                  ("grid_s26", 0, False), ("grid_s26", 400, False)])
def test_real_glasses_are_kept_and_bare_eyes_are_not(masker, still_landmarker, name, index, glasses):
    """The users' own glasses (GRID s27, the helmet selfie; faces the model never saw) are marked to stay on top;
    the bare eyes of GRID s26 (moustache, no glasses) are not."""
    from training.occlusion_train import eye_band

    frame = _frame(name, index)
    landmarks = max(still_landmarker.detect(frame), key=lambda f: f.size).landmarks68
    keep = _keep_on_frame(masker, frame, landmarks)
    band = eye_band(landmarks, max(frame.shape[:2])).astype(bool)[: frame.shape[0], : frame.shape[1]]
    marked = float((keep[band] > 0.5).mean())
    if glasses:
        assert marked > 0.3, f"{name} {index}: {marked:.2f} of the eye band kept"
    else:
        assert marked < 0.05, f"{name} {index}: {marked:.2f} of the bare eye band marked"


def test_the_live_settings_drive_the_stage_key_option_and_session(masker, astronaut, astronaut_landmarks, tmp_path):
    """One table entry: ``--occlusion off`` maps to the setting, ``o`` toggles it, and a running session applies it
    on the next frame (the hand drawn over the face is kept while it is on, painted over once it is off)."""
    import argparse

    import cv2

    from measure.eval_metrics import face_box_mask
    from realtime import live_settings
    from realtime.frames.sources import ImageFolderSource
    from realtime.session import LiveSession
    from tests.fixtures.sessions import frame_after

    assert live_settings.HOTKEYS["o"] == "occlusion" and live_settings.defaults()["occlusion"] is True
    assert live_settings.from_args(argparse.Namespace(occlusion="off"))["occlusion"] is False
    assert live_settings.from_args(argparse.Namespace(occlusion=None))["occlusion"] is True
    occluded, label = OccluderTrack("hand", segment=20).render(9, astronaut, astronaut_landmarks)
    (tmp_path / "stills").mkdir()
    cv2.imwrite(str(tmp_path / "stills" / "hand.png"), occluded)
    inside = label & face_box_mask(astronaut.shape, astronaut_landmarks, grow=0.0)
    assert inside.sum() > 2000

    def kept(image: np.ndarray) -> float:
        return float((np.abs(image.astype(int) - occluded.astype(int)).max(2) <= 8)[inside].mean())

    session = LiveSession(ImageFolderSource(tmp_path / "stills", fps=30, loop=True), [PHOTO], occlusion=masker)
    try:
        session.start()
        on = frame_after(session, session.version, settle=3)
        assert on.info.faces == 1 and session.processor.occlusion_on is True
        assert session.toggle("occlusion").endswith("off")
        off = frame_after(session, session.version, settle=3)
        assert session.processor.occlusion_on is False and session.settings["occlusion"] is False
    finally:
        session.close()
    assert kept(on.image) >= 0.85, f"{kept(on.image):.2f} of the hand kept with occlusion on"
    assert kept(off.image) < 0.6, f"{kept(off.image):.2f} of the hand kept with occlusion off"
