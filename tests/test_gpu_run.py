"""The GPU runs at toy size on the CPU: `make gpu-train`'s pack -> train -> collect -> export, and
`make gpu-bench`'s run, through the same code the GPU machine runs; `bench_model step`'s figures."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
import torch

from realtime.swap.model_contract import read_model_info
from training import bench_model, gpu_run
from training.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]


def test_fp16_weights_split_into_small_files_and_read_back(tmp_path):
    from training.model import FaceSwapModel, make_config

    state = FaceSwapModel(make_config("lite", 64)).state_dict()
    paths = gpu_run.write_fp16_weights(state, {"step": 7}, tmp_path, limit=200_000)
    assert len(paths) > 3 and all(p.stat().st_size < 260_000 for p in paths)  # tensors over the limit are cut
    back, meta = gpu_run.read_fp16_weights(tmp_path)
    assert meta["step"] == 7 and back.keys() == state.keys()
    for name, value in state.items():
        assert back[name].dtype == value.dtype and torch.equal(back[name], value.half().to(value.dtype)), name
    paths[1].unlink()
    with pytest.raises(gpu_run.GpuRunError, match="missing"):
        gpu_run.read_fp16_weights(tmp_path)


def test_gpu_train_toy_run_pack_train_collect_export(trained_run, tmp_path, capsys):
    """Pack the fixture facesets thinned to a tiny budget with the fixture's run to resume (too big for
    the budget: fp16 weights go instead), train 2 steps plus a bench, collect, export."""
    pack_dir, out, run = tmp_path / ".gpu" / "train", tmp_path / "out", tmp_path / "collected"
    whole_mb = trained_run.checkpoint.stat().st_size / 1e6  # weights + AdamW state in fp32: ~6x the fp16 weights
    budget_mb = 0.5 + whole_mb / 2
    assert gpu_run.main(["pack", "--src", trained_run.config.src, "--dst", trained_run.config.dst, "--out", str(pack_dir),
                         "--batch-size", "2", "--resume", str(trained_run.out), "--max-faceset-mb", "0.5",
                         "--max-total-mb", str(budget_mb), "--identity", "astronaut"]) == 0
    said = capsys.readouterr().out
    assert "one face in 2 is packed" in said and "AdamW restarts" in said
    assert "python3 -m training.gpu_run train --pack" in said and "--out $OUT" in said
    plan = json.loads((pack_dir / "plan.json").read_text())
    assert plan["faces"] == {"src": 20, "dst": 20} and plan["resume"]["step"] == 40
    assert sum(p.stat().st_size for p in pack_dir.rglob("*") if p.is_file()) < budget_mb * 1e6

    assert gpu_run.main(["train", "--pack", str(pack_dir), "--out", str(out), "--work", str(tmp_path / "work"),
                         "--steps", "2", "--log-every", "1", "--threads", "1", "--no-progress",
                         "--bench", "lite:64:2", "--bench-steps", "2"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["figures.json", "preview.png", "tensorboard", "weights-fp16-00.pt"]
    assert all(p.stat().st_size < 16e6 for p in out.iterdir() if p.is_file())
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert cv2.imread(str(out / "preview.png")).shape == (5 * 128, 4 * 128, 3)
    figures = json.loads((out / "figures.json").read_text())
    assert figures["start_step"] == 40 and figures["end_step"] == 42 and figures["samples_per_s_overall"] > 0
    assert [h["step"] for h in figures["loss_curve"]] == [41, 42] and figures["model_gflops_per_sample"] > 0
    assert figures["mfu_measured_matmul"] > 0 and figures["bench"][0]["preset"] == "lite"

    assert gpu_run.main(["collect", str(out), "--run", str(run)]) == 0
    ckpt = load_checkpoint(run)
    assert ckpt.step == 42 and ckpt.optimizer_state is None and ckpt.run_config["identity"] == "astronaut"
    from training.export import ExportRequest, export_checkpoint

    info = export_checkpoint(ExportRequest(checkpoint=run, out=tmp_path / "gpu.onnx",
                                           consent="public-domain test images"))
    assert info.resolution == 128 and read_model_info(info.path).identity == "astronaut"
    assert gpu_run.main(["collect", str(out), "--run", str(run)]) == 2  # never overwrites


def test_gpu_bench_toy_run(exported_model, tmp_path):
    from measure import gpu_bench

    out = tmp_path / "bench"
    assert gpu_bench.main(["run", "--out", str(out), "--model", str(exported_model), "--sizes", "320x240",
                           "--pace", "30,fast", "--frames", "12", "--warmup", "4", "--chunk", "6", "--clip-frames",
                           "16", "--threads", "1", "--model-only-runs", "6", "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["bench_320x240.json", "bench_320x240.md", "bench_320x240.png",
                                                      "gpu_bench.md"]
    report = json.loads((out / "bench_320x240.json").read_text())
    assert [r["name"] for r in report["runs"]] == ["30fps", "fast"]
    assert all(r["provider"] == "torch" and r["fps"] > 0 and r["faces_per_frame"] > 0.5 for r in report["runs"])
    assert "Goals" in (out / "gpu_bench.md").read_text()
    assert "--target /tmp/site .whl/*.whl" in gpu_bench.device_command(".whl")
    assert gpu_bench.main(["run", "--out", str(out), "--model", str(tmp_path / "none.onnx")]) == 2


def test_bench_model_step_reports_throughput_split_and_mfu(astronaut_faceset, grace_hopper_faceset):
    f = bench_model.step_figures(str(astronaut_faceset), str(grace_hopper_faceset), "lite", 64, 2, steps=2, warmup=1,
                                 split_steps=1, threads=1)
    assert f["samples_per_s"] == pytest.approx(2 / f["step_ms"] * 1e3)
    assert set(f["split_ms_median"]) == {"data", "forward", "backward", "optimizer"}
    assert all(v > 0 for v in f["split_ms_median"].values())
    assert 0 < f["mfu_measured_matmul"] < 1 and f["mfu_datasheet"] is None  # no datasheet peak for a CPU
    df = bench_model.step_figures(str(astronaut_faceset), str(grace_hopper_faceset), "df", 64, 2, steps=1, warmup=0,
                                  split_steps=0, threads=1)
    assert df["model_gflops_per_sample"] > 5 * f["model_gflops_per_sample"]  # counted from the models
    assert "MFU" in bench_model.format_step_figures(f)


def test_gpu_train_toy_run_of_a_prior_model_carries_meshes_and_reference(astronaut_faceset, grace_hopper_faceset,
                                                                         tmp_path):
    """A prior model on the GPU machine, which has no MediaPipe: the pack carries the src meshes, the run
    sends its reference back, and collect + export embed it."""
    from training.faceset import Faceset
    from training.faceset_mesh import faceset_meshes

    faceset_meshes(Faceset.open(astronaut_faceset), progress=False)  # the cache the pack carries
    pack_dir, out, run = tmp_path / ".gpu" / "train", tmp_path / "out", tmp_path / "collected"
    assert gpu_run.main(["pack", "--src", str(astronaut_faceset), "--dst", str(grace_hopper_faceset), "--out",
                         str(pack_dir), "--preset", "prior", "--resolution", "64", "--batch-size", "2",
                         "--identity", "astronaut"]) == 0
    import tarfile

    with tarfile.open(pack_dir / "facesets.tar") as tar:
        assert any(name.endswith("/mesh_cache.npz") for name in tar.getnames())
    assert gpu_run.main(["train", "--pack", str(pack_dir), "--out", str(out), "--work", str(tmp_path / "work"),
                         "--steps", "2", "--log-every", "1", "--threads", "1", "--no-progress", "--bench", ""]) == 0
    assert (out / "reference.npz").is_file() and json.loads((out / "figures.json").read_text())["model_gflops_per_sample"] > 0
    assert gpu_run.main(["collect", str(out), "--run", str(run)]) == 0
    from training.export import ExportRequest, export_checkpoint

    info = export_checkpoint(ExportRequest(checkpoint=run, out=tmp_path / "prior.onnx", consent="public-domain test images"))
    assert read_model_info(info.path).has_prior_input
