"""`python -m measure.mouth_sheet`: open-mouth frames of a real clip, input | one column per setting."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from measure.mouth_sheet import HEADER, TILE, SheetError, main, parse_compare
from realtime.face.regions import mouth_openness


@pytest.fixture(scope="module")
def hopper_photo_path(tmp_path_factory, grace_hopper):
    path = tmp_path_factory.mktemp("photos") / "grace_hopper.png"
    cv2.imwrite(str(path), grace_hopper)
    return path


def test_compare_values_are_parsed_and_bad_ones_refused():
    assert parse_compare("proportions=0,1") == ("proportions", [0.0, 1.0])
    assert parse_compare("color=none,rct") == ("color", ["none", "rct"])
    for bad in ("proportions", "speed=1,2", "forehead=a,b", "grow="):
        with pytest.raises(SheetError):
            parse_compare(bad)


def test_a_sheet_of_the_widest_mouths_of_a_real_clip(tmp_path, hopper_photo_path, still_landmarker, capsys):
    from tests.fixtures.faces import shared_path

    video = shared_path("video/grid_s26.mp4")
    out = tmp_path / "mouths.png"
    rc = main([str(video), "--model", str(hopper_photo_path), "--compare", "proportions=0,1", "--frames", "2",
               "--spacing", "10", "--max-frames", "40", "--out", str(out)])
    assert rc == 0
    sheet = cv2.imread(str(out))
    assert sheet.shape == (HEADER + 2 * TILE, 3 * TILE, 3)
    said = capsys.readouterr().out
    assert "columns input, proportions=0, proportions=1" in said
    # the first column is the input: its mouth is open (teeth in it); the swapped columns differ from it
    row = sheet[HEADER : HEADER + TILE]
    assert np.abs(row[:, TILE : 2 * TILE].astype(int) - row[:, :TILE]).mean() > 3
    face = still_landmarker.detect(row[:, :TILE])[0]
    assert mouth_openness(face.points) > 0.1


def test_bad_input_is_one_line_and_exit_2(tmp_path, hopper_photo_path, capsys):
    missing = tmp_path / "none.mp4"
    assert main([str(missing), "--model", str(hopper_photo_path), "--compare", "proportions=0,1"]) == 2
    assert main([str(missing), "--model", str(hopper_photo_path), "--compare", "speed=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("mouth_sheet: ") for line in err)
