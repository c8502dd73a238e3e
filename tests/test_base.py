"""The pretrained base (issue 21): a toy base made by the real pretraining path, a run started from it that
changes only what its recipe trains, clear refusals of missing or wrong-shaped bases, the export recording
the base, faces re-cut to the base's face type, and the pretraining pool's pasted skin."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from swapcam.cli import main as swapcam
from training.adapt import prepare_faces, recut_faceset
from training.base import BaseError, Recipe, load_base, save_base
from training.checkpoint import load_checkpoint
from training.faceset import Faceset
from training.trainer import TrainConfig, train

TOY = dict(batch_size=2, workers=0, threads=1, preview_every=0, log_every=1, progress=False, tensorboard=False)


@pytest.fixture(scope="module")
def astronaut_faces(tmp_path_factory, astronaut_faceset) -> Path:
    """A copy of the session's faceset: prior runs here write a mesh cache into their src faceset, which must
    not change the shared fixture that other test files measure (e.g. test_gpu_run's pack sizes)."""
    return Path(shutil.copytree(astronaut_faceset, tmp_path_factory.mktemp("faces") / "astronaut"))


@pytest.fixture(scope="module")
def grace_hopper_faces(tmp_path_factory, grace_hopper_faceset) -> Path:
    return Path(shutil.copytree(grace_hopper_faceset, tmp_path_factory.mktemp("faces") / "grace_hopper"))


@pytest.fixture(scope="module")
def toy_base(tmp_path_factory, astronaut_faces, grace_hopper_faces) -> Path:
    """A 64 px prior model trained 2 steps on the package faces (whole_face), written as a base file."""
    work = tmp_path_factory.mktemp("base")
    result = train(TrainConfig(src=str(grace_hopper_faces), dst=str(astronaut_faces), out=str(work / "pre"),
                               preset="prior", resolution=64, steps=2, identity="toy", **TOY))
    assert result.step == 2
    return save_base(work / "pre", work / "base.pt", name="toy-base", recipe=Recipe(train_parts="decoder_src", lr=1e-3,
                                                                                    warmup_steps=2, batch_size=2),
                     metadata={"people": 2, "credits": "package faces"}).path


def _cli(*args) -> list[str]:
    return ["train", *map(str, args), "--workers", "0", "--threads", "1", "--preview-every", "0", "--log-every", "1",
            "--no-progress", "--no-tensorboard"]


def test_base_file_is_fp16_with_its_recipe_and_data(toy_base):
    base = load_base(toy_base)
    assert all(v.dtype == torch.float16 for v in base.state.values() if v.is_floating_point())
    assert base.model_config.prior and base.model_config.resolution == 64 and base.face_type == "whole_face"
    assert base.recipe.train_parts == "decoder_src" and base.metadata["steps"] == 2
    assert [d["role"] for d in base.metadata["training_data"]] == ["src", "dst"]
    assert "toy-base" in base.describe() and "MiB" in base.describe()


def test_training_from_the_base_changes_only_what_the_recipe_trains(toy_base, astronaut_faces, tmp_path, capsys):
    """`swapcam train --src FACES --base B` with no --dst: every part starts as the base's; after 3 steps the
    target decoder moved and the encoder, inter and dst decoder are bit-for-bit the base's."""
    run = tmp_path / "run"
    assert swapcam(_cli("--src", astronaut_faces, "--out", run, "--base", toy_base, "--steps", "3")) == 0
    out = capsys.readouterr().out
    assert "starting from the pretrained base 'toy-base'" in out and "--from-scratch" in out and "MiB" in out
    base = {k: v.float() for k, v in load_base(toy_base).state.items()}
    ckpt = load_checkpoint(run)
    assert ckpt.step == 3 and ckpt.run_config["base"]["name"] == "toy-base"
    assert ckpt.run_config["train_parts"] == "decoder_src" and ckpt.run_config["dst"] is None
    changed = {k for k, v in ckpt.model_state.items() if not torch.equal(v.float(), base[k])}
    assert changed and all(k.startswith("decoder_src.") for k in changed), sorted(changed)[:5]
    # fp16 base weights are the start: the frozen parts equal them exactly
    assert torch.equal(ckpt.model_state["encoder.body.0.0.weight"], base["encoder.body.0.0.weight"])

    # resuming resumes the run (the base is not read again) and keeps its record
    assert swapcam(_cli("--src", astronaut_faces, "--out", run, "--base", tmp_path / "gone.pt", "--steps", "1")) == 0
    assert "resuming" in capsys.readouterr().out
    assert load_checkpoint(run).step == 4


def test_with_dst_the_shared_parts_learn_the_users_faces(toy_base, astronaut_faces, grace_hopper_faces, tmp_path):
    run = tmp_path / "run"
    assert swapcam(_cli("--src", astronaut_faces, "--dst", grace_hopper_faces, "--out", run, "--base", toy_base,
                        "--steps", "2")) == 0
    ckpt = load_checkpoint(run)
    base = {k: v.float() for k, v in load_base(toy_base).state.items()}
    assert ckpt.run_config["train_parts"] == "all"
    for part in ("encoder.", "inter.", "decoder_dst.", "decoder_src."):
        assert any(not torch.equal(v, base[k]) for k, v in ckpt.model_state.items() if k.startswith(part)), part


def test_missing_base_is_a_clear_error(astronaut_faces, tmp_path, capsys):
    assert swapcam(_cli("--src", astronaut_faces, "--out", tmp_path / "run", "--base", tmp_path / "nope.pt",
                        "--steps", "1")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "base model not found" in err and "--from-scratch" in err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_wrong_shaped_base_is_a_clear_error(toy_base, astronaut_faces, tmp_path, capsys):
    data = torch.load(toy_base, weights_only=True)
    name = "decoder_src.delta.weight"
    data["state"][name] = torch.zeros(3, 5, 1, 1, dtype=torch.float16)
    bad = tmp_path / "bad.pt"
    torch.save(data, bad)
    with pytest.raises(BaseError, match=rf"{name} has shape \[3, 5, 1, 1\]"):
        load_base(bad)
    assert swapcam(_cli("--src", astronaut_faces, "--out", tmp_path / "run", "--base", bad, "--steps", "1")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and name in err and "make base-model" in err
    (tmp_path / "junk.pt").write_bytes(b"not a base")
    assert swapcam(_cli("--src", astronaut_faces, "--out", tmp_path / "run2", "--base", tmp_path / "junk.pt",
                        "--steps", "1")) == 2
    assert "not a readable base model" in capsys.readouterr().err


def test_model_flags_need_from_scratch_and_from_scratch_needs_dst(toy_base, astronaut_faces, tmp_path, capsys):
    assert swapcam(_cli("--src", astronaut_faces, "--out", tmp_path / "a", "--base", toy_base, "--preset", "lite",
                        "--steps", "1")) == 2
    assert "--from-scratch" in capsys.readouterr().err
    assert swapcam(_cli("--src", astronaut_faces, "--out", tmp_path / "b", "--from-scratch", "--steps", "1")) == 2
    assert "needs --dst" in capsys.readouterr().err


def test_export_records_the_base(toy_base, astronaut_faces, tmp_path):
    from realtime.swap.model_contract import read_model_info

    run = tmp_path / "run"
    assert swapcam(_cli("--src", astronaut_faces, "--out", run, "--base", toy_base, "--steps", "1")) == 0
    out = tmp_path / "m.onnx"
    assert swapcam(["export", str(run), "--out", str(out), "--consent", "public-domain test image"]) == 0
    meta = read_model_info(out).metadata
    record = json.loads(meta["swapcam.base"])
    assert record["name"] == "toy-base" and record["sha256"] == load_base(toy_base).sha256
    assert [d["role"] for d in json.loads(meta["swapcam.training_data"])] == ["src"]  # no dst: the base's side
    assert record["credits"] == "package faces"


def test_help_states_the_default_recipe_and_why(capsys):
    with pytest.raises(SystemExit):
        swapcam(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--from-scratch" in text and "models/base/base.pt" in text
    assert "docs/study.md" in text and "docs/base.md" in text and "lite" in text


def test_the_shipped_base_is_small_fp16_and_leaves_s4_out():
    """models/base/base.pt, the base `swapcam train` starts from by default: loads, fp16, under 15 MiB, the
    recipe the README states, and its metadata keeps GRID s4 (the measured new identity) and the eval users out."""
    from training.base import DEFAULT_BASE

    if not DEFAULT_BASE.is_file():
        pytest.skip(f"{DEFAULT_BASE} not shipped in this checkout")
    base = load_base(DEFAULT_BASE)
    assert base.size_bytes < 15 * 2**20
    assert all(v.dtype == torch.float16 for v in base.state.values() if v.is_floating_point())
    assert (base.model_config.preset, base.model_config.resolution, base.face_type) == ("prior_fast", 192, "full")
    assert base.recipe.train_parts == "decoder_src.pyramid" and base.recipe.lr == 3e-4 and base.recipe.warmup_steps == 20
    assert base.recipe.cross_identity == 0.0
    meta = base.metadata
    assert any("s4" in item for item in meta["left_out"]) and meta["cpu_hours"] > 0 and meta["credits"]
    names = " ".join(d["faceset"] + " " + d.get("name", "") for d in meta["training_data"])
    assert "s4" not in names and "s26" not in names and "helmet" not in names


def test_whole_face_faceset_is_recut_to_full(astronaut_faces, tmp_path):
    """A faceset made with extract's defaults (whole_face) is re-cut to the full-face crop: the same pixels as
    aligning the source frame directly (within JPEG and resampling noise), landmarks moved with it."""
    import cv2

    from realtime.face.alignment import align_face

    out, note = prepare_faces([str(astronaut_faces)], tmp_path, "src", "full", 96, progress=False)
    assert "re-cut" in note
    recut = Faceset.open(out)
    assert recut.face_type == "full" and recut.resolution == 96 and len(recut) == len(Faceset.open(astronaut_faces))
    rec = recut.records[7]
    cap = cv2.VideoCapture(rec.source)
    cap.set(cv2.CAP_PROP_POS_FRAMES, rec.frame)
    ok, frame = cap.read()
    assert ok
    direct = align_face(frame, np.array(rec.landmarks), 96, "full")
    assert np.abs(direct.image.astype(float) - recut.load_image(rec)).mean() < 6.0
    assert np.allclose(direct.aligned_landmarks68, rec.aligned_points(), atol=0.05)
    # a second call finds the re-cut faces there (resumable), and a tighter crop cannot hold a wider one
    assert prepare_faces([str(astronaut_faces)], tmp_path, "src", "full", 96, progress=False)[0] == out
    from training.faceset import FacesetError

    with pytest.raises(FacesetError, match="extract the faces again"):
        recut_faceset(recut, tmp_path / "head", "head", 96, progress=False)


def test_pasted_skin_changes_the_face_but_not_eyes_mouth_or_background(astronaut_faces, grace_hopper_faces):
    from realtime.face.regions import face_region, mouth_hole
    from training.faceset_mesh import faceset_meshes
    from training.identity_pool import eye_holes, paste_skin

    a, g = Faceset.open(astronaut_faces), Faceset.open(grace_hopper_faces)
    ma, mg = faceset_meshes(a, progress=False), faceset_meshes(g, progress=False)
    ra, rg = a.records[0], g.records[0]
    face = a.load_image(ra).astype(np.float32) / 255.0
    pasted = paste_skin(face, ma[ra.file], g.load_image(rg), mg[rg.file])
    size = face.shape[0]
    diff = np.abs(pasted - face).mean(-1)
    inside = face_region(ma[ra.file], size, keep=0.5) > 0.99
    outside = cv2_dilate_zero(face_region(ma[ra.file], size, keep=0.5))
    assert diff[inside].mean() > 0.03  # another person's skin
    assert diff[outside].max() < 1e-6  # hair, background untouched
    holes = np.maximum(mouth_hole(ma[ra.file], size), eye_holes(ma[ra.file], size))
    core = holes > 0.99
    if core.sum() > 20:
        assert diff[core].mean() < diff[inside].mean() / 2  # the face's own eyes stay


def cv2_dilate_zero(mask: np.ndarray) -> np.ndarray:
    """Pixels more than 8 px away from ``mask``."""
    import cv2

    return cv2.dilate((mask > 0).astype(np.uint8), np.ones((17, 17), np.uint8)) == 0


def test_people_are_grouped_by_rule(tmp_path):
    from training.faceset import FaceRecord, FacesetHeader
    from training.identity_pool import group_records

    def rec(source):
        return FaceRecord(file=Path(source).stem + ".jpg", source=source, frame=0, face_index=0, landmarks=[],
                          aligned_landmarks=[], matrix=[], face_type="full", sharpness=0, yaw=0, pitch=0, roll=0,
                          face_size=0)

    fs = Faceset(tmp_path, FacesetHeader(64, "full"), [rec("a/063_03.jpg"), rec("a/063_08.jpg"), rec("a/064_03.jpg")])
    assert group_records(fs, "prefix") == {"063": [0, 1], "064": [2]}
    assert group_records(fs, "per_file") == {"063_03": [0], "063_08": [1], "064_03": [2]}
    assert group_records(fs, "one") == {"": [0, 1, 2]}


def test_fine_tune_with_pasted_skin_changes_only_the_target_decoder_and_repeats(toy_base, astronaut_faces,
                                                                              grace_hopper_faces, tmp_path, capsys):
    """`--cross-identity 1 --skin FACES`: every target sample's input wears a donor's skin; the run loads the
    base, moves only decoder_src, records the option, and two runs give the same weights bit for bit."""
    states = []
    for name in ("a", "b"):
        run = tmp_path / name
        assert swapcam(_cli("--src", astronaut_faces, "--out", run, "--base", toy_base, "--steps", "2",
                            "--cross-identity", "1", "--skin", grace_hopper_faces)) == 0
        assert "100% of the target's samples wear another person's skin (grace_hopper)" in capsys.readouterr().out
        ckpt = load_checkpoint(run)
        assert ckpt.run_config["cross_identity"] == 1.0 and ckpt.run_config["skin"] == [str(grace_hopper_faces)]
        states.append(ckpt.model_state)
    base = {k: v.float() for k, v in load_base(toy_base).state.items()}
    changed = {k for k, v in states[0].items() if not torch.equal(v.float(), base[k])}
    assert changed and all(k.startswith("decoder_src.") for k in changed), sorted(changed)[:5]
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_pasted_skin_without_donors_is_a_clear_error(toy_base, astronaut_faces, tmp_path, capsys, monkeypatch):
    """No --skin, no --dst and no built donor pool: one line saying where donors come from, nothing written."""
    import training.skin_pool

    monkeypatch.setattr(training.skin_pool, "DEFAULT_SKINS", tmp_path / "no_skins")
    assert swapcam(_cli("--src", astronaut_faces, "--out", tmp_path / "run", "--base", toy_base, "--steps", "1",
                        "--cross-identity", "0.5")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--skin FACES" in err and "--dst" in err and "--cross-identity 0" in err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_pasted_skin_samples_keep_the_real_face_as_target(astronaut_faces, grace_hopper_faces, tmp_path):
    """Unaugmented, a sample with pasted skin has the faceset's own face as its target and another face as its
    input; with cross_identity 0 the input is the face itself."""
    from training.dataset import AugmentConfig
    from training.model import make_config
    from training.trainer import PairData

    cfg = make_config("prior", 64)
    out = {}
    for p in (0.0, 1.0):
        data = PairData(str(astronaut_faces), None, [str(grace_hopper_faces)], p)
        data.prepare(cfg, tmp_path, progress=False)
        out[p] = data.dataset(64, AugmentConfig.off(), 0)[3]
    assert torch.equal(out[0.0]["src_target"], out[1.0]["src_target"])
    assert torch.equal(out[0.0]["src_input"], out[0.0]["src_target"])
    assert (out[1.0]["src_input"] - out[1.0]["src_target"]).abs().mean() > 0.01


def test_a_child_module_can_train_alone(toy_base, astronaut_faces, tmp_path, capsys):
    run = tmp_path / "run"
    assert swapcam(_cli("--src", astronaut_faces, "--out", run, "--base", toy_base, "--steps", "2",
                        "--train-parts", "decoder_src.pyramid")) == 0
    base = {k: v.float() for k, v in load_base(toy_base).state.items()}
    changed = {k for k, v in load_checkpoint(run).model_state.items() if not torch.equal(v.float(), base[k])}
    assert changed and all(k.startswith("decoder_src.pyramid.") for k in changed), sorted(changed)[:5]
    assert swapcam(_cli("--src", astronaut_faces, "--out", tmp_path / "bad", "--base", toy_base, "--steps", "1",
                        "--train-parts", "decoder_src.nothing")) == 2
    assert "decoder_src.nothing" in capsys.readouterr().err


def test_the_shipped_skins_are_small_consented_faces_with_meshes():
    """models/base/skins, where make base-skins built it: the donors of pasted skin: a few MiB, full faces at the
    base's size, every face with its mesh, only London Set and Canada stills (CC BY 4.0, credited)."""
    from training.faceset_mesh import faceset_meshes
    from training.skin_pool import DEFAULT_SKINS

    if not DEFAULT_SKINS.is_dir():
        pytest.skip(f"{DEFAULT_SKINS} not shipped in this checkout")
    fs = Faceset.open(DEFAULT_SKINS)
    assert sum(f.stat().st_size for f in DEFAULT_SKINS.iterdir()) < 3 * 2**20
    assert (fs.face_type, fs.resolution, len(fs)) == ("full", 192, 100)
    assert len(faceset_meshes(fs, progress=False)) == len(fs)  # cached: no landmarker run
    import re

    assert all(re.fullmatch(r"\d{3}_03\.jpg|\d{3}[fm]\.jpg", r.source) for r in fs.records)
    readme = (DEFAULT_SKINS / "README.md").read_text()
    assert "London Set" in readme and "canada" in readme and "CC BY 4.0" in readme


def test_skin_pool_build_copies_faces_with_meshes_and_short_sources(grace_hopper_faces, tmp_path):
    from training.faceset import FacesetError
    from training.faceset_mesh import faceset_meshes
    from training.skin_pool import SkinDonors, build

    src = Faceset.open(grace_hopper_faces)
    import re

    keep = [r.file for r in src.records[:5]]
    n = build([str(grace_hopper_faces)], tmp_path / "skins", pattern="|".join(map(re.escape, keep)))
    pool = Faceset.open(tmp_path / "skins")
    assert n == len(pool) == 5 and [r.file for r in pool.records] == keep and all("/" not in r.source for r in pool.records)
    assert set(faceset_meshes(pool, progress=False)) == {r.file for r in pool.records}
    donors = SkinDonors.open([tmp_path / "skins"], 48, src.face_type, src.crop_scale)
    crop, warp = donors.draw(np.random.default_rng(0))
    assert crop.shape == (48, 48, 3) and warp.size == 48
    with pytest.raises(FacesetError, match="skin donors"):
        SkinDonors.open([tmp_path / "skins"], 48, "head", src.crop_scale)


def test_a_recipe_that_trains_the_prior_pyramid_changes_only_it_and_repeats(toy_base, astronaut_faces, tmp_path):
    """The shipped base's recipe (docs/base.md: the only fine-tune that did not lose identity against the base
    alone): `training.base recipe` rewrites the recipe and keeps the weights; a run from that base with no
    flags moves only decoder_src.pyramid, the same way twice."""
    from training.base import main as base_main

    copy = tmp_path / "base.pt"
    shutil.copy(toy_base, copy)
    assert base_main(["recipe", str(copy), "--set", '{"train_parts": "decoder_src.pyramid"}']) == 0
    before, after = load_base(toy_base), load_base(copy)
    assert after.recipe.train_parts == "decoder_src.pyramid" and after.recipe.lr == before.recipe.lr
    assert all(torch.equal(before.state[k], after.state[k]) for k in before.state)
    assert after.metadata == before.metadata
    base = {k: v.float() for k, v in after.state.items()}
    states = []
    for name in ("a", "b"):
        assert swapcam(_cli("--src", astronaut_faces, "--out", tmp_path / name, "--base", copy, "--steps", "2")) == 0
        ckpt = load_checkpoint(tmp_path / name)
        assert ckpt.run_config["train_parts"] == "decoder_src.pyramid"
        states.append(ckpt.model_state)
    changed = {k for k, v in states[0].items() if not torch.equal(v.float(), base[k])}
    assert changed and all(k.startswith("decoder_src.pyramid.") for k in changed), sorted(changed)[:5]
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert base_main(["recipe", str(copy), "--set", '{"train_parts": "decoder_src.nope,x"}']) == 2
    assert load_base(copy).recipe.train_parts == "decoder_src.pyramid"
