"""`--model` names a model or a photo: one factory, one interface; and the commands that take it
(live, bench, eval) run the one-photo swap, with one-line errors and exit 2 for bad photos in live."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from realtime.swap.model_contract import ModelContractError
from realtime.swap.photo_swapper import PhotoSwapper
from realtime.swap.reference import ReferenceError
from realtime.swap.swapper import FaceSwapper
from realtime.swap.swappers import open_swapper, swapper_kind

REPO = Path(__file__).resolve().parents[1]
SHARED_ATTRIBUTES = ("name", "path", "identity", "consent", "resolution", "face_type", "describe", "prepare", "get")


@pytest.fixture(scope="module")
def hopper_photo(tmp_path_factory, grace_hopper):
    path = tmp_path_factory.mktemp("photos") / "grace_hopper.jpg"
    cv2.imwrite(str(path), grace_hopper)
    return path


def test_the_factory_opens_models_and_photos_alike(exported_model, hopper_photo):
    model = open_swapper(exported_model, providers=None, resolution=320)  # a photo option, ignored for a model
    photo = open_swapper(hopper_photo, threads=1, resolution=192)  # a model option, ignored for a photo
    assert isinstance(model, FaceSwapper) and not model.needs_mesh
    assert isinstance(photo, PhotoSwapper) and photo.needs_mesh and photo.resolution == 192
    for swapper in (model, photo):
        for attribute in SHARED_ATTRIBUTES:
            assert hasattr(swapper, attribute), (swapper, attribute)
    assert model.path == exported_model and model.identity == "astronaut" and "NASA" in model.consent
    assert photo.path == hopper_photo and photo.identity is None and photo.consent is None
    assert swapper_kind(exported_model) == "model" and swapper_kind(hopper_photo) == "photo"
    with pytest.raises(TypeError, match="unknown options"):
        open_swapper(hopper_photo, colour="rct")


def test_the_factory_names_what_is_wrong(tmp_path):
    with pytest.raises(ModelContractError, match="model file not found"):
        open_swapper(tmp_path / "nothing.onnx")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(ModelContractError, match="neither a model"):
        open_swapper(notes)
    with pytest.raises(ReferenceError, match="photo not found"):
        open_swapper(tmp_path / "nobody.png")


def test_the_shipped_photo_says_who_and_on_what_consent():
    photo = open_swapper(REPO / "models" / "photos" / "london_063.jpg")
    assert "London Set" in photo.identity and "consented" in photo.consent
    assert "consent: the London Set's sitters consented" in photo.describe()
    assert "CC BY 4.0" in photo.reference.credit


def _live(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, str(REPO / "run_live.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_live_swaps_from_a_photo_and_refuses_a_bad_one(tmp_path, hopper_photo, astronaut_video, astronaut):
    res = _live(["--model", str(hopper_photo), "--source", str(astronaut_video), "--unpaced", "--sink", "null",
                 "--max-frames", "6", "--stats-json", str(tmp_path / "stats.json")], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "one-photo swap" in res.stdout and "reference grace_hopper.jpg" in res.stdout
    assert json.loads((tmp_path / "stats.json").read_text())["frames_out"] == 6
    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY))
    res = _live(["--model", str(grey), "--source", str(astronaut_video), "--sink", "null"], tmp_path)
    assert res.returncode == 2 and "greyscale" in res.stderr and "grey.png" in res.stderr
    assert len([ln for ln in res.stderr.splitlines() if "error" in ln]) == 1


def test_live_without_arguments_starts_with_the_shipped_photo(tmp_path, astronaut_video):
    res = _live(["--source", str(astronaut_video), "--unpaced", "--sink", "null", "--max-frames", "3"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "models/photos/london_063.jpg" in res.stdout and "beats the shipped trained model" in res.stdout
    assert "n switches to models/demo.onnx" in res.stdout


def test_bench_times_the_photo_swap(hopper_photo, astronaut_video, tmp_path):
    from measure.bench import BenchConfig, BenchOptions, expand_configs, run_bench

    configs = expand_configs(BenchConfig(model=str(hopper_photo)), [("pace", ["fast"])])
    report = run_bench(str(astronaut_video), configs,
                       BenchOptions(frames=6, warmup=2, chunk=6, max_load=10, model_only_runs=6, progress=False))
    run = report["runs"][0]
    assert run["model"]["kind"] == "photo" and run["model"]["path"] == str(hopper_photo)
    assert run["frames_out"] == 6 and run["stages_ms"]["swap"]["count"] == 6
    assert run["model_only"]["fps"] > 0 and run["provider"] == "OpenCV remap (CPU)"


def test_eval_scores_the_photo_swap(hopper_photo, astronaut_video, astronaut_faceset, tmp_path):
    from swapcam.cli import main

    out = tmp_path / "eval_photo"
    code = main(["eval", str(astronaut_video), "--model", str(hopper_photo), "--target", str(astronaut_faceset),
                 "--out", str(out), "--max-frames", "4", "--identity-every", "2", "--faceset-faces", "4",
                 "--no-progress"])
    assert code == 0
    report = json.loads((out / "eval.json").read_text())
    assert report["model"] == str(hopper_photo) and report["frames"] == 4 and report["frames_with_output_face"] >= 2
