"""`swapcam occlusion-train` / `occlusion-export` on real facesets: trains, resumes, exports a model the live loop loads."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from swapcam.cli import main


def _train(facesets, out, steps):
    return main(["occlusion-train", "--facesets", *map(str, facesets), "--out", str(out), "--steps", str(steps),
                 "--batch-size", "4", "--val-every", "2", "--resolution", "32", "--width", "4", "--full", "2"])


def test_trains_resumes_and_exports(tmp_path, astronaut_faceset, grace_hopper_faceset, capsys):
    run = tmp_path / "run"
    assert _train([astronaut_faceset, grace_hopper_faceset], run, 2) == 0
    assert (run / "occlusion_checkpoint.pt").is_file() and (run / "preview.png").is_file()
    assert _train([astronaut_faceset, grace_hopper_faceset], run, 4) == 0
    log = capsys.readouterr().out
    assert "step 2 of 4" in log and "saved step 4" in log and "validation at step 4: recall" in log
    out = tmp_path / "occ.onnx"
    assert main(["occlusion-export", str(run), "--out", str(out), "--credits", "test faces (public domain)"]) == 0
    from realtime.merging.occlusion import OcclusionModel

    model = OcclusionModel(out)
    assert model.resolution == 32 and model.face_type == "whole_face"
    meta = model.metadata
    assert meta["swapcam.occlusion.steps"] == "4" and meta["swapcam.occlusion.credits"] == "test faces (public domain)"
    assert "80 aligned faces" in meta["swapcam.occlusion.training_data"]
    assert json.loads(meta["swapcam.occlusion.validation"])["step"] == 4
    assert model.get(np.zeros((1, 32, 32, 3), np.uint8)).shape == (1, 32, 32)


def test_refuses_the_eval_users_faces(tmp_path, astronaut_faceset):
    copy = tmp_path / "fs"
    shutil.copytree(astronaut_faceset, copy)
    manifest = copy / "faceset.jsonl"
    lines = manifest.read_text().splitlines()
    rows = [lines[0]] + [json.dumps({**json.loads(ln), "source": "/data/video/helmet_selfie.mp4"}) for ln in lines[1:]]
    manifest.write_text("\n".join(rows) + "\n")
    assert _train([copy], tmp_path / "run", 1) == 2


def test_a_changed_run_is_refused_not_mixed(tmp_path, astronaut_faceset, grace_hopper_faceset):
    run = tmp_path / "run"
    assert _train([astronaut_faceset, grace_hopper_faceset], run, 1) == 0
    code = main(["occlusion-train", "--facesets", str(astronaut_faceset), str(grace_hopper_faceset), "--out", str(run),
                 "--steps", "2", "--resolution", "48", "--width", "4", "--full", "2", "--batch-size", "4"])
    assert code == 2
