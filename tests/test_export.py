"""The exporter on a really trained model: DFM contract, metadata, parity with torch, refusals."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from realtime.swap.model_contract import INPUT_NAME, METADATA_KEYS, OUTPUT_NAMES, read_model_info
from swapcam.cli import main as swapcam
from tests.fixtures.models import FIXTURE_STEPS
from training.checkpoint import load_checkpoint
from training.dataset import AugmentConfig, PairDataset, open_facesets
from training.export import ExportError, ExportRequest, SwapGraph, export_checkpoint, tensorrt_available

CONSENT = ["--consent", "test image, public domain"]

FP16_BOUND = 5e-3  # measured max |fp16 - fp32| ~3e-4 on these faces; bound with margin


def _faces(trained_run, count: int = 3) -> np.ndarray:
    """Real aligned faces (NHWC BGR [0,1] float32) from the dst faceset."""
    src, dst = open_facesets(trained_run.config.src, trained_run.config.dst)
    batch = PairDataset(src, dst, 128, AugmentConfig.off()).fixed_batch(count)
    return np.ascontiguousarray(batch["dst_input"].permute(0, 2, 3, 1).numpy())


def _torch_outputs(trained_run, faces: np.ndarray) -> list[np.ndarray]:
    model = load_checkpoint(trained_run.checkpoint).build_model()
    with torch.no_grad():
        return [t.numpy() for t in SwapGraph(model)(torch.from_numpy(faces))]


def test_exported_model_keeps_the_dfm_contract(exported_model, trained_run):
    info = read_model_info(exported_model)
    assert info.resolution == 128 and info.face_type == "whole_face" and info.identity == "astronaut"
    assert info.self_described and not info.has_morph_input
    proto = onnx.load(str(exported_model))
    assert [i.name for i in proto.graph.input] == [INPUT_NAME]
    assert tuple(o.name for o in proto.graph.output) == OUTPUT_NAMES
    sess = ort.InferenceSession(str(exported_model), providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    assert inp.type == "tensor(float)" and inp.shape[1:] == [128, 128, 3] and not isinstance(inp.shape[0], int)
    for batch in (1, 3):  # dynamic batch
        outs = sess.run(None, {INPUT_NAME: _faces(trained_run, batch)})
        assert [o.shape for o in outs] == [(batch, 128, 128, 1), (batch, 128, 128, 3), (batch, 128, 128, 1)]
        for o in outs:
            assert o.dtype == np.float32 and o.min() >= 0.0 and o.max() <= 1.0


def test_exported_metadata(exported_model, trained_run):
    meta = read_model_info(exported_model).metadata
    assert set(METADATA_KEYS) <= set(meta)
    assert meta["swapcam.training_steps"] == str(FIXTURE_STEPS)
    assert meta["swapcam.architecture"] == "df:lite"
    assert meta["swapcam.channel_order"] == "BGR" and meta["swapcam.layout"] == "NHWC"
    assert "public-domain" in meta["swapcam.consent"] and "NASA" in meta["swapcam.data_credits"]
    data = json.loads(meta["swapcam.training_data"])
    assert [d["role"] for d in data] == ["src", "dst"] and all(d["faces"] > 0 for d in data)
    assert data[0]["sources"] and data[0]["sources"][0].startswith("astronaut")
    created = dt.datetime.fromisoformat(meta["swapcam.created"])
    assert abs((dt.datetime.now(dt.timezone.utc) - created).total_seconds()) < 3600


def test_fp32_parity_with_torch(exported_model, trained_run):
    faces = _faces(trained_run, 4)
    sess = ort.InferenceSession(str(exported_model), providers=["CPUExecutionProvider"])
    for got, ref in zip(sess.run(None, {INPUT_NAME: faces}), _torch_outputs(trained_run, faces)):
        assert np.abs(got - ref).max() < 1e-3


def test_fp16_export_halves_the_file_and_stays_close(exported_model, trained_run, tmp_path):
    out = tmp_path / "astronaut16.onnx"
    assert swapcam(["export", str(trained_run.checkpoint), "--out", str(out), "--fp16", *CONSENT]) == 0
    info = read_model_info(out)
    assert info.metadata["swapcam.architecture"].endswith(":fp16")
    assert out.stat().st_size < 0.6 * exported_model.stat().st_size
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].type == "tensor(float)" and all(o.type == "tensor(float)" for o in sess.get_outputs())
    faces = _faces(trained_run, 2)
    for got, ref in zip(sess.run(None, {INPUT_NAME: faces}), _torch_outputs(trained_run, faces)):
        assert np.abs(got - ref).max() < FP16_BOUND


def test_existing_output_is_refused_unless_forced(trained_run, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"precious")
    assert swapcam(["export", str(trained_run.checkpoint), "--out", str(out), *CONSENT]) == 2
    assert "exists" in capsys.readouterr().err and out.read_bytes() == b"precious"
    assert swapcam(["export", str(trained_run.out), "--out", str(out), "--force", "--identity", "Eileen", *CONSENT]) == 0
    assert read_model_info(out).identity == "Eileen"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temp file left


def test_missing_or_corrupt_checkpoint_is_refused(tmp_path, capsys):
    assert swapcam(["export", str(tmp_path / "none.pt"), "--out", str(tmp_path / "a.onnx"), *CONSENT]) == 2
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(Exception, match="not a readable swapcam checkpoint"):
        export_checkpoint(ExportRequest(checkpoint=bad, out=tmp_path / "b.onnx", consent="test"))
    assert not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob(".*tmp"))


def test_out_must_be_onnx_or_dfm(trained_run, tmp_path):
    with pytest.raises(ExportError, match=r"\.onnx \(or \.dfm"):
        export_checkpoint(ExportRequest(checkpoint=trained_run.checkpoint, out=tmp_path / "m.pt", consent="test"))


@pytest.mark.skipif(tensorrt_available(), reason="TensorRT present: the cache is built instead")
def test_tensorrt_cache_without_tensorrt_is_a_clear_error(trained_run, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert swapcam(["export", str(trained_run.checkpoint), "--out", str(out), "--trt-cache", *CONSENT]) == 2
    assert "TensorRT" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("consent", [None, "", "   ", "not stated"])
def test_export_without_consent_is_refused_and_says_why(trained_run, tmp_path, capsys, consent):
    out = tmp_path / "m.onnx"
    args = ["export", str(trained_run.checkpoint), "--out", str(out)] + ([] if consent is None else ["--consent", consent])
    assert swapcam(args) == 2
    err = capsys.readouterr().err
    assert "--consent TEXT is required" in err and "real person's face" in err
    assert not out.exists() and not list(tmp_path.iterdir())
    with pytest.raises(ExportError, match="consent"):
        export_checkpoint(ExportRequest(checkpoint=trained_run.checkpoint, out=out))


def _declared(value_info) -> list:
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in value_info.type.tensor_type.shape.dim]


def test_inputs_and_outputs_declare_batch_r_r_c(exported_model, trained_run):
    """Issue 13: the outputs declared ['batch', 'batch', 'Transpose...dim_2', C]; tools that trust declared
    shapes (TensorRT, OpenVINO, converters) need [N, R, R, C], with one symbol for N."""
    proto = onnx.load(str(exported_model))
    declared = [_declared(v) for v in (*proto.graph.input, *proto.graph.output)]
    assert declared == [["batch", 128, 128, 3], ["batch", 128, 128, 1], ["batch", 128, 128, 3], ["batch", 128, 128, 1]]
    onnx.checker.check_model(proto, full_check=True)  # strict shape inference agrees with the declarations
    sess = ort.InferenceSession(str(exported_model), providers=["CPUExecutionProvider"])
    assert [o.shape for o in sess.get_outputs()] == [["batch", 128, 128, c] for c in (1, 3, 1)]
    outs = sess.run(None, {INPUT_NAME: _faces(trained_run, 3)})
    assert [list(o.shape) for o in outs] == [[3, 128, 128, c] for c in (1, 3, 1)]


def test_declared_shapes_are_checked_against_the_graph(exported_model):
    from training.export import declare_io_shapes

    with pytest.raises(ExportError, match="shape inference fails"):
        declare_io_shapes(onnx.load(str(exported_model)), 64)  # a 128 px graph cannot be declared 64 px


def _without_created(path) -> bytes:
    proto = onnx.load(str(path))
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key != "swapcam.created"]
    del proto.metadata_props[:]
    for key, value in kept:
        proto.metadata_props.add(key=key, value=value)
    return proto.SerializeToString()


def test_out_dfm_writes_the_same_model_under_deepfacelabs_name(trained_run, tmp_path, capsys):
    """DeepFaceLive lists only *.dfm files: `--out NAME.dfm` gives the same bytes as NAME.onnx (but the export time)."""
    for name in ("astronaut.dfm", "astronaut.onnx"):
        assert swapcam(["export", str(trained_run.out), "--out", str(tmp_path / name), "--fp16", *CONSENT]) == 0
    assert "wrote" in capsys.readouterr().out and not list(tmp_path.glob(".*tmp"))
    assert _without_created(tmp_path / "astronaut.dfm") == _without_created(tmp_path / "astronaut.onnx")
    info = read_model_info(tmp_path / "astronaut.dfm")
    assert info.self_described and info.resolution == 128
    proto = onnx.load(str(tmp_path / "astronaut.dfm"))
    assert [_declared(o) for o in proto.graph.output] == [["batch", 128, 128, c] for c in (1, 3, 1)]  # fp16 too


def test_crop_scale_is_recorded_in_the_model(exported_model, trained_run, tmp_path):
    assert read_model_info(exported_model).metadata["swapcam.crop_scale"] == "1.0"
    out = tmp_path / "tight.onnx"
    info = export_checkpoint(ExportRequest(checkpoint=trained_run.checkpoint, out=out, crop_scale=0.92, consent="test"))
    assert info.crop_scale == 0.92 and read_model_info(out).crop_scale == 0.92
    assert read_model_info(out, crop_scale=1.1).crop_scale == 1.1  # --crop-scale overrides it
