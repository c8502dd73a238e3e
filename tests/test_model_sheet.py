"""`python -m measure.model_sheet`: open-mouth frames of a real clip, input | one column per model or photo."""

from __future__ import annotations

import cv2

from measure.model_sheet import main
from measure.mouth_sheet import HEADER, TILE


def test_a_sheet_with_a_model_and_a_photo_column(tmp_path, exported_model, grace_hopper, capsys):
    from tests.fixtures.faces import shared_path

    video = shared_path("video/grid_s26.mp4")
    photo = tmp_path / "grace_hopper.png"
    cv2.imwrite(str(photo), grace_hopper)
    out = tmp_path / "sheet.png"
    assert main([str(video), "--model", str(exported_model), str(photo), "--name", "trained", "photo",
                 "--frames", "2", "--spacing", "10", "--max-frames", "40", "--out", str(out)]) == 0
    assert cv2.imread(str(out)).shape == (HEADER + 2 * TILE, 3 * TILE, 3)
    assert "columns input, trained, photo" in capsys.readouterr().out
    # a wrong command line is one line and no sheet
    assert main([str(video), "--model", str(photo), "--name", "a", "b", "--out", str(tmp_path / "x.png")]) == 2
    assert main([str(video), "--model", f"{photo}@model-mouth", "--max-frames", "40", "--frames", "1",
                 "--out", str(tmp_path / "y.png")]) == 2
    assert "@model-mouth" in capsys.readouterr().err and not (tmp_path / "x.png").exists()
