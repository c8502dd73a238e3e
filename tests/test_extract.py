"""Extraction: real videos and stills -> aligned faceset; manifest round trip; resume; corrupt inputs.

Runs through the real `swapcam` entry (`swapcam.cli.main`) where a user would.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.face.alignment import transform_points, warp_to_aligned
from swapcam.cli import main as swapcam
from tests.fixtures.faces import shared_path
from training.extract import ExtractOptions, extract
from training.faceset import Faceset

QUIET = ExtractOptions(size=128, progress=False)


@pytest.fixture(scope="session")
def stills_folder(tmp_path_factory, astronaut, grace_hopper) -> Path:
    """The package-shipped faces as jpg files in a folder."""
    folder = tmp_path_factory.mktemp("stills")
    cv2.imwrite(str(folder / "astronaut.jpg"), astronaut)
    cv2.imwrite(str(folder / "grace_hopper.jpg"), grace_hopper)
    return folder


@pytest.fixture(scope="session")
def stills_faceset(tmp_path_factory, stills_folder) -> Path:
    out = tmp_path_factory.mktemp("fs") / "stills"
    assert swapcam(["extract", str(stills_folder), "--out", str(out), "--size", "128", "--no-progress"]) == 0
    return out


def test_fixture_facesets_have_a_face_for_every_frame(astronaut_faceset, grace_hopper_faceset):
    for path in (astronaut_faceset, grace_hopper_faceset):
        fs = Faceset.open(path)
        assert (fs.resolution, fs.face_type) == (128, "whole_face")
        assert [r.frame for r in fs] == list(range(40))
        img = fs.load_image(fs.records[0])
        assert img.shape == (128, 128, 3) and img.std() > 20


def test_grid_s1_detection_rate_over_99_percent(tmp_path):
    video = shared_path("video/grid_s1.mp4")
    summary = extract([video], tmp_path / "fs", ExtractOptions(size=64, every_nth=10, progress=False))
    assert not summary.errors, summary.format()
    assert summary.frames_read == len(range(0, 4472, 10))
    print(f"\ngrid_s1 every 10th frame: {summary.frames_with_face}/{summary.frames_read} frames with a face "
          f"({100 * summary.detection_rate:.2f}%)")
    assert summary.detection_rate > 0.99
    assert len(Faceset.open(tmp_path / "fs")) == summary.faces_written == summary.frames_with_face


def test_stills_folder_gives_one_face_per_image(stills_faceset, stills_folder):
    fs = Faceset.open(stills_faceset)
    assert sorted(Path(r.source).name for r in fs) == ["astronaut.jpg", "grace_hopper.jpg"]
    for rec in fs:
        assert rec.frame == 0 and rec.face_index == 0 and rec.face_type == "whole_face"
        assert rec.confidence is not None and rec.confidence > 0.5  # static mode scores its detections
        assert abs(rec.yaw) < 30 and abs(rec.pitch) < 30 and rec.sharpness > 10 and rec.face_size > 80


def test_manifest_round_trips_landmarks_matrix_and_image(stills_faceset):
    fs = Faceset.open(stills_faceset)
    again = Faceset.open(stills_faceset)
    assert again.records == fs.records  # what was written reads back the same
    for rec in fs:
        matrix = np.asarray(rec.matrix)
        assert matrix.shape == (2, 3)
        assert np.abs(transform_points(np.asarray(rec.landmarks), matrix) - rec.aligned_points()).max() < 0.05
        source = cv2.imread(rec.source)
        rewarped = warp_to_aligned(source, matrix, fs.resolution).astype(np.float32)
        stored = fs.load_image(rec).astype(np.float32)
        assert np.abs(rewarped - stored).mean() < 3.0  # only JPEG loss between them


def test_rerun_resumes_and_writes_nothing_new(stills_faceset, stills_folder):
    manifest = (stills_faceset / "faceset.jsonl").read_bytes()
    summary = extract([stills_folder], stills_faceset, QUIET)
    assert (summary.frames_read, summary.faces_written, summary.frames_resumed) == (0, 0, 2)
    assert (stills_faceset / "faceset.jsonl").read_bytes() == manifest


def test_video_resume_continues_where_it_stopped_and_keeps_deletions(tmp_path, astronaut_video):
    out = tmp_path / "fs"
    first = extract([astronaut_video], out, ExtractOptions(size=64, max_frames=15, progress=False))
    assert first.faces_written == 15 and not first.errors
    deleted = Faceset.open(out).records[3]
    (out / deleted.file).unlink()  # a person removes a face they do not want
    second = extract([astronaut_video], out, ExtractOptions(size=64, progress=False))
    assert (second.frames_resumed, second.faces_written) == (15, 25)
    frames = [r.frame for r in Faceset.open(out)]
    assert frames == [f for f in range(40) if f != deleted.frame]
    third = extract([astronaut_video], out, ExtractOptions(size=64, progress=False))
    assert third.faces_written == 0 and third.frames_read == 0


def test_corrupt_videos_fail_by_name_and_other_inputs_still_extracted(tmp_path, astronaut_video, capsys):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    truncated = tmp_path / "truncated.mp4"
    data = astronaut_video.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    out = tmp_path / "fs"
    code = swapcam(["extract", str(garbage), str(truncated), str(astronaut_video), str(tmp_path / "missing.mp4"),
                    "--out", str(out), "--size", "64", "--no-progress"])
    assert code == 1
    printed = capsys.readouterr()
    for name in ("garbage.mp4", "truncated.mp4", "missing.mp4"):
        assert f"ERROR {tmp_path / name}" in printed.out
    assert "input(s) failed" in printed.err
    assert len(Faceset.open(out)) == 40  # the good video was extracted in full


def test_video_that_stops_decoding_midway_is_an_error_and_keeps_its_faces(tmp_path, astronaut_video, capsys):
    # MJPG .avi cut after ~60% of its bytes: it opens and announces 40 frames, then decoding stops.
    cap = cv2.VideoCapture(str(astronaut_video))
    whole = tmp_path / "whole.avi"
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (640, 480))
    while (frame := cap.read())[0]:
        writer.write(frame[1])
    writer.release()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    out = tmp_path / "fs"
    assert swapcam(["extract", str(cut), "--out", str(out), "--size", "64", "--no-progress"]) == 1
    assert f"ERROR {cut}: decoding stopped at frame" in capsys.readouterr().out
    kept = len(Faceset.open(out))
    assert 10 <= kept < 40  # the frames before the damage were extracted and kept


def test_corrupt_image_in_folder_is_skipped_counted_and_named(tmp_path, astronaut, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_good.jpg"), astronaut)
    (folder / "b_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 10 + b"\xff\xd9")
    ok, jpeg = cv2.imencode(".jpg", astronaut)
    (folder / "c_cut.jpg").write_bytes(jpeg.tobytes()[:5000])  # a copy that stopped early
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "fs"
    assert swapcam(["extract", str(folder), "--out", str(out), "--size", "64", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"skipped {folder / 'b_broken.jpg'}: cannot be decoded: corrupt" in printed
    assert f"skipped {folder / 'c_cut.jpg'}: truncated: the JPEG data stops before its end-of-image marker" in printed
    assert f"skipped {folder / 'notes.txt'}: not an image file" in printed
    assert len(Faceset.open(out)) == 1


def test_out_folder_that_is_not_a_faceset_is_refused_untouched(tmp_path, stills_folder, capsys):
    out = tmp_path / "my_documents"
    out.mkdir()
    (out / "thesis.txt").write_text("precious")
    assert swapcam(["extract", str(stills_folder), "--out", str(out), "--no-progress"]) == 2
    assert "not a faceset" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["thesis.txt"]


def test_the_out_faceset_as_input_is_an_error(stills_faceset, capsys):
    before = (stills_faceset / "faceset.jsonl").read_bytes()
    assert swapcam(["extract", str(stills_faceset), "--out", str(stills_faceset), "--size", "128", "--no-progress"]) == 1
    assert "is the --out faceset itself" in capsys.readouterr().out
    assert (stills_faceset / "faceset.jsonl").read_bytes() == before


def test_other_size_into_existing_faceset_is_refused(stills_faceset, stills_folder, capsys):
    assert swapcam(["extract", str(stills_folder), "--out", str(stills_faceset), "--size", "256", "--no-progress"]) == 2
    assert "128 px" in capsys.readouterr().err


def test_max_faces_and_min_face_size(tmp_path, astronaut, grace_hopper):
    # Two faces side by side, ~93 px (astronaut) and ~99 px (Grace Hopper): a composition that
    # MediaPipe's static detector finds both faces in (it misses one in some other layouts).
    big_astronaut = cv2.resize(astronaut, None, fx=1.6, fy=1.6)[: grace_hopper.shape[0]]
    pair = cv2.resize(np.hstack([big_astronaut, grace_hopper]), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(tmp_path / "pair.png"), pair)
    two = extract([tmp_path / "pair.png"], tmp_path / "two", ExtractOptions(size=64, max_faces=2, progress=False))
    assert two.faces_written == 2
    sizes = sorted(r.face_size for r in Faceset.open(tmp_path / "two"))
    one = extract([tmp_path / "pair.png"], tmp_path / "one", ExtractOptions(size=64, max_faces=1, progress=False))
    assert one.faces_written == 1 and Faceset.open(tmp_path / "one").records[0].face_size == sizes[1]  # the largest
    big = extract([tmp_path / "pair.png"], tmp_path / "big",
                  ExtractOptions(size=64, max_faces=2, min_face_size=sum(sizes) / 2, progress=False))
    assert big.faces_written == 1 and sum(big.faces_dropped.values()) == 1


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        swapcam(["extract", "--help"])
    text = capsys.readouterr().out
    for option in ("--out", "--face-type", "--size", "--every-nth", "--max-frames", "--max-faces",
                   "--min-face-size", "--min-sharpness", "--dedupe", "--contact-sheet"):
        assert option in text
    assert re.search(r"--size SIZE\s+side of the aligned face images in pixels\s+\(default:\s+256\)", text)
    assert "whole_face" in text


def test_crop_scale_is_cut_recorded_and_kept_apart(tmp_path, astronaut):
    """--crop-scale cuts a tighter crop, the manifest records it (the trainer passes it on to the model's
    metadata), and facesets of different crops are never mixed."""
    import cv2

    from training.dataset import open_facesets
    from training.faceset import Faceset, FacesetError

    cv2.imwrite(str(tmp_path / "a.png"), astronaut)
    normal = extract([tmp_path / "a.png"], tmp_path / "normal", ExtractOptions(size=64, progress=False))
    tight = extract([tmp_path / "a.png"], tmp_path / "tight", ExtractOptions(size=64, crop_scale=0.8, progress=False))
    assert normal.faces_written == tight.faces_written == 1
    fs_normal, fs_tight = Faceset.open(tmp_path / "normal"), Faceset.open(tmp_path / "tight")
    assert (fs_normal.crop_scale, fs_tight.crop_scale) == (1.0, 0.8)
    eye_gap = [np.ptp(np.asarray(fs.records[0].aligned_landmarks)[[36, 45], 0]) for fs in (fs_normal, fs_tight)]
    assert eye_gap[1] == pytest.approx(eye_gap[0] / 0.8, rel=0.02)
    with pytest.raises(FacesetError, match="crop scale"):
        extract([tmp_path / "a.png"], tmp_path / "tight", ExtractOptions(size=64, progress=False))
    with pytest.raises(FacesetError, match="--crop-scale"):
        open_facesets(tmp_path / "normal", tmp_path / "tight")
