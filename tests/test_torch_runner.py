"""The torch execution path: our exported .onnx files run by torch (read from the file, never the
checkpoint) give ONNX Runtime's outputs; `--provider torch` in the swapper and the live command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from realtime.face.alignment import align_face
from realtime.swap.model_contract import ModelContractError
from realtime.swap.onnx_torch import OnnxModule
from realtime.swap.swapper import FaceSwapper, wants_torch
from realtime.swap.torch_runner import TORCH_PROVIDER, TorchRunner, cuda_torch_available
from training.export import export_onnx_graph, to_fp16_weights
from training.model import FaceSwapModel, make_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def real_crops(exported_model, astronaut, grace_hopper, still_landmarker) -> np.ndarray:
    """Three aligned real faces (astronaut, Grace Hopper, astronaut mirrored) at the model's resolution."""
    sw = FaceSwapper(exported_model)
    crops = []
    for img in (astronaut, grace_hopper, np.ascontiguousarray(astronaut[:, ::-1])):
        face = still_landmarker.detect(img)[0]
        crops.append(align_face(img, face.landmarks68, sw.resolution, sw.face_type).image)
    return np.stack(crops)


def _ort_outputs(path: Path, faces: np.ndarray) -> list[np.ndarray]:
    out = FaceSwapper(path, providers=["CPUExecutionProvider"]).get(faces)
    return [out.face_mask[..., None], out.face, out.celeb_mask[..., None]]


def _max_errors(a: list[np.ndarray], b: list[np.ndarray]) -> list[float]:
    return [float(np.abs(x - y).max()) for x, y in zip(a, b)]


def test_exported_model_on_torch_equals_onnx_runtime_fp32_and_fp16(exported_model, real_crops, tmp_path):
    """fp32 within 1e-3 and fp16 compute within 5e-3 of ONNX Runtime on the CPU, three real faces in one batch."""
    ref = _ort_outputs(exported_model, real_crops)
    fp32 = TorchRunner(exported_model, device="cpu", threads=1).run(real_crops)
    assert [o.shape for o in fp32] == [o.shape for o in ref] and all(o.dtype == np.float32 for o in fp32)
    assert max(_max_errors(fp32, ref)) < 1e-3
    fp16 = TorchRunner(exported_model, device="cpu", dtype=torch.float16, threads=1).run(real_crops)
    assert max(_max_errors(fp16, ref)) < 5e-3
    assert max(_max_errors(fp16, ref)) > 0  # it really computed in half precision
    # the fp16-weight export (Cast nodes on every weight) reads the same way
    half_file = tmp_path / "half.onnx"
    onnx.save(to_fp16_weights(onnx.load(str(exported_model))), str(half_file))
    assert max(_max_errors(TorchRunner(half_file, device="cpu", threads=1).run(real_crops),
                           _ort_outputs(half_file, real_crops))) < 1e-3
    # batch is free: one face alone gives its row of the batch
    single = TorchRunner(exported_model, device="cpu", threads=1).run(real_crops[1:2])
    assert max(_max_errors(single, [o[1:2] for o in fp32])) < 1e-4


@pytest.mark.parametrize("preset", ["df", "liae"])
def test_full_presets_convert(preset, tmp_path):
    """The non-separable presets (depth-to-space upscales; LIAE's concatenated inters) at 64 px, random weights."""
    torch.manual_seed(1)
    path = tmp_path / f"{preset}.onnx"
    export_onnx_graph(FaceSwapModel(make_config(preset, 64)).eval(), path)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "DepthToSpace" in ops
    faces = np.random.default_rng(2).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    assert max(_max_errors(TorchRunner(path, device="cpu", threads=1).run(faces), _ort_outputs(path, faces))) < 1e-3


def test_swapper_provider_torch(exported_model, real_crops):
    sw = FaceSwapper(exported_model, providers=[TORCH_PROVIDER], threads=1).prepare()
    assert sw.providers == [TORCH_PROVIDER] and sw.session is None and sw.device == "cpu"
    assert "runs on torch" in sw.describe() and sw.warmup_ms > 0
    got = sw.get(real_crops)
    ref = FaceSwapper(exported_model).get(real_crops)
    assert got.face.shape == ref.face.shape and got.face_mask.shape == ref.face_mask.shape
    assert np.abs(got.face - ref.face).max() < 1e-3 and np.abs(got.celeb_mask - ref.celeb_mask).max() < 1e-3
    with pytest.raises(ValueError, match="runs alone"):
        FaceSwapper(exported_model, providers=[TORCH_PROVIDER, "CPUExecutionProvider"])


def test_torch_is_chosen_alone_only_where_cuda_torch_and_no_onnxruntime_gpu():
    import onnxruntime as ort

    ort_gpu = any(p in ("CUDAExecutionProvider", "TensorrtExecutionProvider", "DmlExecutionProvider")
                  for p in ort.get_available_providers())
    assert cuda_torch_available() == torch.cuda.is_available()
    assert wants_torch(None) == (not ort_gpu and torch.cuda.is_available())
    assert wants_torch([TORCH_PROVIDER]) and not wants_torch(["CPUExecutionProvider"])


def test_dfm_style_graph_with_morph_input(tmp_path):
    """A DFM-contract graph in float16 with DeepFaceLab's AMP morph input (ReduceMean, Mul, Identity)."""
    r = 16
    inputs = [helper.make_tensor_value_info("in_face:0", TensorProto.FLOAT16, ["N", r, r, 3]),
              helper.make_tensor_value_info("morph_value:0", TensorProto.FLOAT16, [1])]
    nodes = [helper.make_node("ReduceMean", ["in_face:0"], ["out_face_mask:0"], keepdims=1, axes=[3]),
             helper.make_node("Mul", ["in_face:0", "morph_value:0"], ["out_celeb_face:0"]),
             helper.make_node("Identity", ["out_face_mask:0"], ["out_celeb_face_mask:0"])]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT16, ["N", r, r, c])
            for n, c in zip(("out_face_mask:0", "out_celeb_face:0", "out_celeb_face_mask:0"), (1, 3, 1))]
    path = tmp_path / "amp.onnx"
    onnx.save(helper.make_model(helper.make_graph(nodes, "dfm", inputs, outs),
                                opset_imports=[helper.make_opsetid("", 13)]), str(path))
    faces = np.full((2, r, r, 3), 200, np.uint8)
    face_mask, face, _ = TorchRunner(path, device="cpu", morph_value=0.5).run(faces)
    assert np.allclose(face, 200 / 255 * 0.5, atol=2e-3) and np.allclose(face_mask, 200 / 255, atol=2e-3)
    sw = FaceSwapper(path, providers=[TORCH_PROVIDER])
    assert sw.input_dtype == np.float16 and np.allclose(sw.get(faces).face, 200 / 255 * 0.75, atol=2e-3)


def test_unsupported_operator_is_named(tmp_path):
    x = helper.make_tensor_value_info("in_face:0", TensorProto.FLOAT, ["N", 8, 8, 3])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
            for n in ("out_face_mask:0", "out_celeb_face:0", "out_celeb_face_mask:0")]
    nodes = [helper.make_node("Hardmax", ["in_face:0"], ["out_celeb_face:0"]),
             helper.make_node("Identity", ["in_face:0"], ["out_face_mask:0"]),
             helper.make_node("Identity", ["in_face:0"], ["out_celeb_face_mask:0"])]
    path = tmp_path / "odd.onnx"
    onnx.save(helper.make_model(helper.make_graph(nodes, "odd", [x], outs), opset_imports=[helper.make_opsetid("", 13)]),
              str(path))
    with pytest.raises(ModelContractError, match="Hardmax"):
        OnnxModule.load(path)


def test_live_runs_with_provider_torch(tmp_path, exported_model, astronaut_video):
    res = subprocess.run([sys.executable, str(REPO / "run_live.py"), "--model", str(exported_model), "--source",
                          str(astronaut_video), "--unpaced", "--sink", "null", "--max-frames", "8", "--provider", "torch",
                          "--threads", "1"], cwd=tmp_path, capture_output=True, text=True, timeout=240,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    assert "runs on torch" in res.stdout and "cpu, float32" in res.stdout


@pytest.mark.parametrize("preset", ["lite", "df", "liae"])
def test_forward_reads_no_device_value_so_cuda_graphs_can_capture_it(preset, tmp_path):
    """On the meta device any read of a tensor's value fails: the whole forward runs there in fp16,
    so it never waits on a GPU value (Resize scales and other host-read constants stay on the CPU)."""
    torch.manual_seed(0)
    path = tmp_path / f"{preset}.onnx"
    export_onnx_graph(FaceSwapModel(make_config(preset, 64)).eval(), path, fp16=True)
    module = OnnxModule.load(path).to("meta", torch.float16)
    outs = module(torch.empty((3, 64, 64, 3), device="meta", dtype=torch.float16))
    assert [tuple(o.shape) for o in outs] == [(3, 64, 64, 1), (3, 64, 64, 3), (3, 64, 64, 1)]
    assert all(o.dtype == torch.float16 for o in outs)
