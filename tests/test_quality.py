"""Faceset quality passes of `swapcam extract`: blur, near-duplicates, contact sheet."""

from __future__ import annotations

import cv2
import numpy as np

from swapcam.cli import main as swapcam
from tests.fixtures.faces import shared_path
from training.extract import ExtractOptions, extract
from training.faceset import Faceset
from training.quality import contact_sheet, near_duplicates, sharpness


def test_sharpness_falls_when_the_face_is_blurred(astronaut_faceset):
    fs = Faceset.open(astronaut_faceset)
    rec = fs.records[0]
    img = fs.load_image(rec)
    sharp, blurred = sharpness(img, rec.aligned_points()), sharpness(cv2.GaussianBlur(img, (0, 0), 2.5), rec.aligned_points())
    assert blurred < 0.3 * sharp


def test_min_sharpness_drops_blurry_photos(tmp_path, astronaut):
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "sharp.png"), astronaut)
    cv2.imwrite(str(folder / "blurry.png"), cv2.GaussianBlur(astronaut, (0, 0), 3.0))
    probe = extract([folder], tmp_path / "probe", ExtractOptions(size=128, progress=False))
    scores = {r.source.rsplit("/", 1)[-1]: r.sharpness for r in Faceset.open(tmp_path / "probe")}
    assert probe.faces_written == 2 and scores["blurry.png"] < 0.5 * scores["sharp.png"]
    threshold = (scores["blurry.png"] + scores["sharp.png"]) / 2
    out = tmp_path / "fs"
    assert swapcam(["extract", str(folder), "--out", str(out), "--size", "128", "--no-progress",
                    "--min-sharpness", f"{threshold:.1f}"]) == 0
    assert [r.source.rsplit("/", 1)[-1] for r in Faceset.open(out)] == ["sharp.png"]
    # the dropped photo is remembered: a re-run does not search it again
    again = extract([folder], out, ExtractOptions(size=128, min_sharpness=threshold, progress=False))
    assert again.frames_read == 0 and again.frames_resumed == 2


def test_dedupe_collapses_a_still_head(tmp_path, still_face_video):
    out = tmp_path / "still"
    assert swapcam(["extract", str(still_face_video), "--out", str(out), "--size", "128", "--no-progress", "--dedupe"]) == 0
    still_left = len(Faceset.open(out))
    assert 1 <= still_left <= 6, still_left  # 60 frames of one unmoving face
    # dropped duplicates stay dropped on a re-run
    again = extract([still_face_video], out, ExtractOptions(size=128, progress=False))
    assert again.faces_written == 0 and len(Faceset.open(out)) == still_left


def test_dedupe_keeps_different_people_and_a_talking_face(tmp_path, astronaut, grace_hopper):
    folder = tmp_path / "people"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), astronaut)
    cv2.imwrite(str(folder / "g.png"), grace_hopper)
    extract([folder], tmp_path / "people_fs", ExtractOptions(size=128, progress=False))
    assert near_duplicates(Faceset.open(tmp_path / "people_fs")) == []
    video = shared_path("video/grid_s1.mp4")  # a man talking: the mouth moves between sampled frames
    extract([video], tmp_path / "talk", ExtractOptions(size=128, every_nth=5, max_frames=300, progress=False))
    talk = Faceset.open(tmp_path / "talk")
    assert len(near_duplicates(talk)) < 0.5 * len(talk)


def test_contact_sheet_png(tmp_path, astronaut_faceset):
    path = contact_sheet(Faceset.open(astronaut_faceset), tmp_path / "sheet.png", columns=10, thumb=64)
    sheet = cv2.imread(str(path))
    assert sheet.shape == (64 + 4 * 64, 10 * 64, 3)  # 40 faces in 4 rows under the header
    assert sheet[64:].std() > 20 and np.abs(sheet[64:128, :64].astype(int) - 40).mean() > 10


def test_contact_sheet_from_the_command_on_an_existing_faceset(tmp_path, astronaut_faceset, capsys):
    path = tmp_path / "review" / "sheet.png"
    assert swapcam(["extract", "--out", str(astronaut_faceset), "--size", "128", "--contact-sheet", str(path)]) == 0
    assert cv2.imread(str(path)) is not None
    assert "40 faces" in capsys.readouterr().out
