"""The classic landmark swap (issue 22's reference row) on real faces: the still's face lands on the frame's,
with the frame's L*a*b* mean and spread inside the hull, and nothing outside the face changes."""

from __future__ import annotations

import cv2
import numpy as np

from measure.classic_warp import ClassicSwap, main


def test_the_still_is_warped_onto_the_frames_face_with_its_tone(astronaut, grace_hopper, still_landmarker):
    swap = ClassicSwap(astronaut)
    out = swap(grace_hopper)
    blank = np.full((120, 160, 3), 90, np.uint8)
    assert swap(blank) is blank  # no face: the frame as it came
    swap.close()
    points = still_landmarker.detect(grace_hopper)[0].points[:468]
    hull = np.zeros(grace_hopper.shape[:2], np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(points).astype(np.int32)), 1)
    inner = cv2.erode(hull, np.ones((15, 15), np.uint8)).astype(bool)
    outside = ~cv2.dilate(hull, np.ones((9, 9), np.uint8)).astype(bool)
    assert np.array_equal(out[outside], grace_hopper[outside])
    assert np.abs(out[inner].astype(int) - grace_hopper[inner].astype(int)).mean() > 10  # the face is another's
    lab_in = cv2.cvtColor(grace_hopper, cv2.COLOR_BGR2LAB)[inner].astype(np.float32)
    lab_out = cv2.cvtColor(out, cv2.COLOR_BGR2LAB)[inner].astype(np.float32)
    assert np.all(np.abs(lab_out.mean(0) - lab_in.mean(0)) < 6)  # the frame's tone (measured on the whole hull)


def test_a_forehead_cut_leaves_the_frames_hairline(astronaut, grace_hopper, still_landmarker):
    """--forehead 0.5: the hull is cut half-way from the brows to the hairline, as the one-photo swap cuts it;
    above the cut the frame stays as it was, below it the face is swapped."""
    from realtime.face.regions import forehead_cut

    points = still_landmarker.detect(grace_hopper)[0].points[:468]
    cut = int(np.ceil(forehead_cut(points, 0.5)))
    swap = ClassicSwap(astronaut, forehead=0.5)
    out = swap(grace_hopper)
    swap.close()
    whole = ClassicSwap(astronaut)
    out_whole = whole(grace_hopper)
    whole.close()
    above = slice(0, cut - 4)  # a few rows of slack: the frame's landmarks come from the video landmarker
    assert np.abs(out[above].astype(int) - grace_hopper[above].astype(int)).max() <= 1  # only the feather's rounding
    assert np.abs(out_whole[above].astype(int) - grace_hopper[above].astype(int)).max() > 20  # the whole hull reaches it
    nose = np.round(points[4]).astype(int)
    assert np.abs(out[nose[1] - 3: nose[1] + 4, nose[0] - 3: nose[0] + 4].astype(int)
                  - grace_hopper[nose[1] - 3: nose[1] + 4, nose[0] - 3: nose[0] + 4].astype(int)).mean() > 5
    with np.testing.assert_raises(ValueError):
        ClassicSwap(astronaut, points="68", forehead=0.5)


def test_the_command_writes_one_png_per_frame(grace_hopper_video, astronaut, tmp_path):
    still = tmp_path / "astronaut.png"
    cv2.imwrite(str(still), astronaut)
    assert main([str(grace_hopper_video), "--still", str(still), "--out", str(tmp_path / "out"), "--max-frames", "3"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["000000.png", "000001.png", "000002.png"]
    assert main([str(grace_hopper_video), "--still", str(tmp_path / "none.png"), "--out", str(tmp_path / "x")]) == 2


def test_the_tone_sheet_shows_the_input_the_classic_swap_and_each_variant(grace_hopper_video, astronaut, tmp_path):
    from measure.tone_sheet import main as tone_sheet

    still = tmp_path / "astronaut.png"
    cv2.imwrite(str(still), astronaut)
    out = tmp_path / "tone.png"
    assert tone_sheet([str(grace_hopper_video), "--still", str(still), "--frames", "1,3", "--variant", "today=",
                       "--variant", "global=shading=0", "--out", str(out)]) == 0
    picture = cv2.imread(str(out))
    assert picture.shape[1] == 4 * 220 and picture.shape[0] == 22 + 2 * 220  # input, classic, two variants
    assert tone_sheet([str(grace_hopper_video), "--still", str(still), "--frames", "1", "--variant", "x=bad=1",
                       "--out", str(out)]) == 2
