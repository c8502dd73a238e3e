"""`swapcam eval`: metric sanity on real faces (real videos, real facesets, real landmarks, dlib)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.face.alignment import align_face, align_matrix, hull_mask, warp_from_aligned
from measure.eval_identity import IdentityEncoder, dlib_model_dir, faceset_identity
from measure.eval_metrics import expression_error, pose_error, still_runs
from measure.evaluate import EvalInputError, evaluate, read_frames

FRAMES = 20
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def encoder() -> IdentityEncoder:
    return IdentityEncoder()


@pytest.fixture(scope="module")
def identities(encoder, astronaut_faceset, grace_hopper_faceset):
    return faceset_identity(astronaut_faceset, encoder, 12), faceset_identity(grace_hopper_faceset, encoder, 12)


@pytest.fixture(scope="module")
def astronaut_frames(astronaut_video) -> list[np.ndarray]:
    return list(read_frames(astronaut_video, FRAMES))


@pytest.fixture(scope="module")
def unmodified(astronaut_frames, identities, encoder):
    target, other = identities
    return evaluate(astronaut_frames, astronaut_frames, target, [other], encoder=encoder, progress=False)


def paste_face(frames: list[np.ndarray], donor: np.ndarray) -> list[np.ndarray]:
    """Paste ``donor``'s aligned face over the face of every frame (a crude swap, same alignment code)."""
    from realtime.face.landmarks import FaceLandmarker

    size = 256
    with FaceLandmarker(static_images=True) as still:
        d = still.detect(donor)[0]
    face = align_face(donor, d.landmarks68, size, "whole_face")
    mask = hull_mask(face.aligned_landmarks68, size)[:, :, None]
    out = []
    with FaceLandmarker() as lm:
        for frame in frames:
            f = lm.detect(frame)[0]
            m = align_matrix(f.landmarks68, size, "whole_face")
            img, roi = warp_from_aligned(face.image.astype(np.float32), m, frame.shape)
            alpha, _ = warp_from_aligned(mask, m, frame.shape)
            alpha = alpha.reshape(alpha.shape[0], alpha.shape[1], 1)
            new = frame.copy()
            region = new[roi.slices()].astype(np.float32)
            new[roi.slices()] = np.clip(img * alpha + region * (1 - alpha), 0, 255).astype(np.uint8)
            out.append(new)
    return out


def jitter(frames: list[np.ndarray], pixels: float, seed: int = 0) -> list[np.ndarray]:
    """Each frame shifted by a random sub-pixel offset of up to ``pixels``: frame-to-frame shake."""
    rng = np.random.default_rng(seed)
    out = []
    for frame in frames:
        dx, dy = rng.uniform(-pixels, pixels, 2)
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        out.append(cv2.warpAffine(frame, m, frame.shape[1::-1], borderMode=cv2.BORDER_REPLICATE))
    return out


def test_dlib_models_found_without_importing_the_package():
    folder = dlib_model_dir()
    assert (folder / "dlib_face_recognition_resnet_model_v1.dat").stat().st_size > 1_000_000


def test_unmodified_video_scores_no_pose_error_and_unit_warp_ratio(unmodified):
    r = unmodified.report
    assert r["frames"] == FRAMES and r["frames_with_input_face"] == FRAMES
    assert r["pose_error_deg"]["mean_of_axes"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert r["expression_error_iod"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert r["temporal"]["warp_ratio"] == pytest.approx(1.0, abs=1e-9)
    assert r["temporal"]["warp_error_input"]["mean"] > 0  # the head moves: there is something to measure
    ident = r["identity"]
    assert ident["similarity_to_target"]["mean"] > 0.95
    assert ident["dlib_distance_to_target"]["mean"] < 0.6  # dlib's same-person threshold
    assert ident["top1_accuracy"] == 1.0 and ident["top1_of_mean_descriptor"] == "astronaut"
    # the input shows the target, so the input's person is not added as a distractor
    assert ident["gallery"] == ["astronaut", "grace_hopper"]
    eyes = r["eyes"]  # the same eyes: they follow exactly
    assert eyes["frames"] == FRAMES and 0.2 < eyes["openness_input_mean"] < 0.45
    assert eyes["openness_mean_abs_difference"] == pytest.approx(0.0, abs=1e-9)
    assert eyes["closed"]["frames"] == 2 and eyes["closed"]["mean_abs_difference"] == pytest.approx(0.0, abs=1e-9)
    assert eyes["iris_error_pct"]["mean"] == pytest.approx(0.0, abs=1e-6) and eyes["iris_error_pct"]["frames"] == FRAMES
    assert len(r["per_frame"]["eye_openness_output"]) == FRAMES


def test_pasted_person_scores_lower_identity_to_the_original(astronaut_frames, grace_hopper, identities, encoder, unmodified):
    target, other = identities
    pasted = paste_face(astronaut_frames, grace_hopper)
    r = evaluate(astronaut_frames, pasted, target, [other], encoder=encoder, identity_every=2, progress=False).report
    original = unmodified.report["identity"]["similarity_to_target"]["mean"]
    assert r["identity"]["similarity_to_target"]["mean"] < original - 0.03
    assert r["identity"]["dlib_distance_to_target"]["mean"] > unmodified.report["identity"]["dlib_distance_to_target"]["mean"]
    # the pasted face is retrieved as Grace Hopper, not the astronaut
    assert r["identity"]["top1_of_mean_descriptor"] == "grace_hopper"
    assert r["identity"]["top1_accuracy"] < 0.5
    # the paste follows the astronaut's head, so the pose is roughly kept
    assert r["pose_error_deg"]["mean_of_axes"]["mean"] < 10


def test_added_jitter_raises_warp_ratio(astronaut_frames, identities, encoder, unmodified):
    target, _ = identities
    shaken = jitter(astronaut_frames, 3.0)
    r = evaluate(astronaut_frames, shaken, target, encoder=encoder, identity_every=FRAMES, progress=False).report
    assert r["temporal"]["warp_ratio"] > 1.5
    assert r["temporal"]["warp_error_output"]["mean"] > unmodified.report["temporal"]["warp_error_input"]["mean"]


def test_landmark_jitter_on_a_still_face(still_face_video, identities, encoder):
    target, _ = identities
    frames = list(read_frames(still_face_video, 24))
    r = evaluate(frames, jitter(frames, 2.0, seed=1), target, encoder=encoder, identity_every=24, progress=False).report
    t = r["temporal"]
    assert t["still_frames"] >= 20  # the head does not move: the input's flow finds still segments
    assert t["jitter_output_iod"] > 2 * t["jitter_input_iod"]
    assert t["jitter_ratio"] > 2


def test_expression_error_ignores_pose_but_sees_an_open_mouth(astronaut, still_landmarker):
    lmk = still_landmarker.detect(astronaut)[0].landmarks68.astype(np.float64)
    angle = np.radians(12)
    rot = 1.3 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = lmk @ rot.T + [40, -25]
    assert expression_error(lmk, moved) == pytest.approx(0.0, abs=1e-9)
    opened = lmk.copy()
    opened[57:60, 1] += 15  # lower lip down
    opened[65:68, 1] += 15
    assert expression_error(lmk, opened) > 0.02


def test_pose_error_wraps_and_still_runs():
    assert pose_error((170, 0, -179), (-170, 5, 179)).tolist() == pytest.approx([20, 5, 2])
    motion = np.array([0.1] * 6 + [2.0] + [0.1] * 3 + [np.nan] + [0.1] * 5)
    assert still_runs(motion, min_length=5).tolist() == [True] * 6 + [False] * 5 + [True] * 5


def test_eval_command_writes_json_and_pictures(astronaut_video, astronaut_faceset, grace_hopper_faceset, tmp_path, capsys):
    from swapcam.cli import main

    out = tmp_path / "eval"
    code = main(["eval", str(astronaut_video), "--swapped", str(astronaut_video), "--target", str(astronaut_faceset),
                 "--gallery", str(grace_hopper_faceset), "--out", str(out), "--max-frames", "10",
                 "--identity-every", "3", "--faceset-faces", "6", "--no-progress"])
    assert code == 0
    report = json.loads((out / "eval.json").read_text())
    assert report["frames"] == 10 and report["temporal"]["warp_ratio"] == pytest.approx(1.0)
    assert len(report["per_frame"]["warp_error_output"]) == 10
    curves = cv2.imread(str(out / "eval_curves.png"))
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert curves is not None and curves.shape[0] > 400 and curves.shape[1] > 600
    assert sheet is not None and sheet.shape[1] >= 4 * 160  # two (input | output) pairs a row
    assert "warp ratio" in capsys.readouterr().out
    table = (out / "eval.md").read_text().splitlines()
    assert table[2].startswith("| swap | dlib distance") and table[4].startswith("| goal |")
    assert table[5].startswith(f"| {astronaut_video.name} |") and "| 1.00 |" in table[5]  # sharpness of itself
    assert "iris error (% eye width)" in table[2] and table[5].endswith("| 0.000 | 0.0 |")  # its own eyes


def test_eval_command_refuses_missing_files(astronaut_faceset, tmp_path, capsys):
    from swapcam.cli import main

    code = main(["eval", str(tmp_path / "nope.mp4"), "--swapped", str(tmp_path / "nope.mp4"),
                 "--target", str(astronaut_faceset), "--out", str(tmp_path / "o"), "--no-progress"])
    assert code == 1
    assert "nope.mp4" in capsys.readouterr().err
    code = main(["eval", str(tmp_path), "--swapped", str(tmp_path), "--target", str(tmp_path / "no_faceset"),
                 "--out", str(tmp_path / "o"), "--no-progress"])
    assert code == 1
    assert "not a faceset" in capsys.readouterr().err


def test_eval_takes_a_folder_of_frames_and_refuses_a_size_mismatch(astronaut_frames, identities, encoder, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(astronaut_frames[:4]):
        cv2.imwrite(str(folder / f"{i:04d}.png"), frame)
    frames = list(read_frames(folder))
    assert len(frames) == 4 and np.array_equal(frames[2], astronaut_frames[2])
    target, _ = identities
    small = [cv2.resize(f, (320, 240)) for f in frames]
    with pytest.raises(EvalInputError, match="same size"):
        evaluate(frames, small, target, encoder=encoder, progress=False)


def test_read_frames_rejects_an_empty_folder(tmp_path):
    with pytest.raises(EvalInputError, match="no images"):
        next(read_frames(tmp_path))


def test_eval_with_a_model_swaps_through_the_live_processor(astronaut_video, exported_model, astronaut_faceset,
                                                             grace_hopper_faceset, tmp_path):
    from swapcam.cli import main

    out = tmp_path / "eval_model"
    code = main(["eval", str(astronaut_video), "--model", str(exported_model), "--target", str(grace_hopper_faceset),
                 "--gallery", str(astronaut_faceset), "--out", str(out), "--max-frames", "6", "--identity-every", "2",
                 "--faceset-faces", "6", "--no-progress"])
    assert code == 0
    report = json.loads((out / "eval.json").read_text())
    assert report["model"] == str(exported_model) and report["frames"] == 6
    assert report["frames_with_output_face"] >= 1
    # the swap changed the face: the output is no longer pixel-identical to the input
    assert report["temporal"]["warp_ratio"] != pytest.approx(1.0, abs=1e-6)
    assert report["identity"]["similarity_to_target"]["count"] == 3


def test_unmodified_video_is_fully_sharp(unmodified):
    detail = unmodified.report["detail"]
    assert detail["sharpness_ratio"]["mean"] == pytest.approx(1.0, abs=1e-9)
    assert detail["ghosting_fraction"]["count"] == 0  # no merge, no blend weights: not measured


def test_a_blurred_copy_scores_low_sharpness(astronaut_frames, identities, encoder):
    target, other = identities
    blurred = [cv2.GaussianBlur(f, (0, 0), 2.0) for f in astronaut_frames]
    detail = evaluate(astronaut_frames, blurred, target, [other], encoder=encoder, identity_every=FRAMES,
                      progress=False).report["detail"]
    assert detail["sharpness_ratio"]["mean"] < 0.2


def test_a_half_transparent_merge_is_flagged_as_ghosted(astronaut_frames, identities, encoder):
    """The shipped demo model merged by the live processor: opaque by default; at 50 % opacity the
    input face shows through everywhere (two faces at once), and the ghosting measure says so."""
    from measure.eval_swap import swap_frames
    from realtime.merging.merge import MergeSettings

    target, other = identities
    demo = REPO / "models" / "demo.onnx"
    scores = {}
    for opacity in (1.0, 0.5):
        pairs = list(swap_frames(astronaut_frames, demo, merge=MergeSettings(opacity=opacity)))
        scores[opacity] = evaluate(astronaut_frames, [o for o, _ in pairs], target, [other], encoder=encoder,
                                   identity_every=FRAMES, progress=False,
                                   blend_weights=[w for _, w in pairs]).report["detail"]
    assert scores[0.5]["ghosted_frames"] == 1.0 and scores[0.5]["ghosting_fraction"]["mean"] > 0.9
    # opaque by default; what is left is the feathered border of holes in this model's mask
    assert scores[1.0]["ghosted_frames"] == 0.0 and scores[1.0]["ghosting_fraction"]["mean"] < 0.2


def test_eval_scores_the_one_photo_swap_as_a_reference_row(astronaut_video, exported_model, astronaut_faceset,
                                                           grace_hopper_faceset, tmp_path, capsys):
    """`--reference PHOTO` scores the no-training swap on the same frames beside the model: Grace Hopper's
    photo on the astronaut video moves the output toward her, and eval.md has both rows."""
    from matplotlib import cbook

    from swapcam.cli import main

    photo = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    out = tmp_path / "eval_ref"
    code = main(["eval", str(astronaut_video), "--model", str(exported_model), "--reference", str(photo),
                 "--target", str(grace_hopper_faceset), "--gallery", str(astronaut_faceset), "--out", str(out),
                 "--max-frames", "6", "--identity-every", "2", "--faceset-faces", "6", "--no-progress"])
    assert code == 0
    report = json.loads((out / "eval.json").read_text())
    ref = report["reference"]
    assert ref["one_photo"] == str(photo) and ref["frames"] == 6
    ident = ref["identity"]
    assert ident["similarity_to_target"]["mean"] > ident["input_similarity_to_target"]["mean"]
    table = (out / "eval.md").read_text()
    assert f"| {exported_model.name} |" in table and "| one-photo swap (grace_hopper.jpg), no training |" in table
    capsys.readouterr()
    assert main(["eval", str(astronaut_video), "--model", str(exported_model), "--reference", str(exported_model),
                 "--target", str(grace_hopper_faceset), "--out", str(out), "--max-frames", "2", "--no-progress"]) == 1
    assert "not a model" in capsys.readouterr().err
