"""The swapper: our exported model through ONNX Runtime, batching, fp16 and AMP inputs, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from realtime.face.alignment import align_face
from realtime.swap.model_contract import ModelContractError
from realtime.swap.swapper import FaceSwapper, best_providers, provider_settings, tensorrt_cache_dir


def _dfm_graph(path, *, dtype=TensorProto.FLOAT, resolution=16, morph=False, outputs=None):
    """A minimal DFM-contract graph written with onnx.helper: celeb face = input (x morph), masks = channel mean."""
    r = resolution
    inputs = [helper.make_tensor_value_info("in_face:0", dtype, ["N", r, r, 3])]
    nodes = [helper.make_node("ReduceMean", ["in_face:0"], ["out_face_mask:0"], keepdims=1, axes=[3])]
    if morph:
        inputs.append(helper.make_tensor_value_info("morph_value:0", dtype, [1]))
        nodes.append(helper.make_node("Mul", ["in_face:0", "morph_value:0"], ["out_celeb_face:0"]))
    else:
        nodes.append(helper.make_node("Identity", ["in_face:0"], ["out_celeb_face:0"]))
    nodes.append(helper.make_node("Identity", ["out_face_mask:0"], ["out_celeb_face_mask:0"]))
    names = outputs or ["out_face_mask:0", "out_celeb_face:0", "out_celeb_face_mask:0"]
    outs = [helper.make_tensor_value_info(n, dtype, ["N", r, r, c]) for n, c in zip(names, (1, 3, 1))]
    graph = helper.make_graph(nodes, "dfm", inputs, outs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def swapper(exported_model):
    return FaceSwapper(exported_model).prepare()


def test_exported_model_loads_on_the_best_provider(swapper, capsys):
    assert swapper.providers[-1] == "CPUExecutionProvider"
    assert swapper.providers == swapper.session.get_providers()
    assert best_providers()[0] in swapper.providers
    assert "providers in use" in swapper.describe()
    assert swapper.warmup_ms is not None and swapper.warmup_ms > 0


def test_batched_swap_matches_single_faces(swapper, astronaut, grace_hopper, still_landmarker):
    r = swapper.resolution
    crops = []
    for img in (astronaut, grace_hopper):
        face = still_landmarker.detect(img)[0]
        crops.append(align_face(img, face.landmarks68, r, swapper.face_type).image)
    batch = np.stack(crops)
    out = swapper.get(batch)
    assert out.face.shape == (2, r, r, 3) and out.face_mask.shape == (2, r, r) and out.celeb_mask.shape == (2, r, r)
    for arr in (out.face, out.face_mask, out.celeb_mask):
        assert arr.dtype == np.float32 and arr.min() >= 0.0 and arr.max() <= 1.0
    single = swapper.get(batch[1])
    assert np.allclose(single.face[0], out.face[1], atol=1e-4)
    assert not np.allclose(out.face[0], out.face[1])  # different faces, different outputs
    with pytest.raises(ValueError, match="uint8"):
        swapper.get(batch.astype(np.float32))


def test_fp16_model_with_morph_input(tmp_path):
    path = _dfm_graph(tmp_path / "amp16.onnx", dtype=TensorProto.FLOAT16, morph=True)
    sw = FaceSwapper(path, morph_value=0.5)
    assert sw.input_dtype == np.float16 and sw.info.has_morph_input and sw.face_type == "whole_face"
    faces = np.full((3, 16, 16, 3), 200, np.uint8)
    out = sw.get(faces)
    assert out.face.dtype == np.float32
    assert np.allclose(out.face, 200 / 255 * 0.5, atol=2e-3)  # morph_value reached the graph
    assert np.allclose(FaceSwapper(path).get(faces).face, 200 / 255 * 0.75, atol=2e-3)  # default 0.75


def test_bad_model_files_give_clear_errors(tmp_path):
    """The swapper validates through the contract (whose refusals tests/test_model_contract.py covers)."""
    with pytest.raises(ModelContractError, match="not found"):
        FaceSwapper(tmp_path / "missing.onnx")
    wrong = _dfm_graph(tmp_path / "wrong.onnx", outputs=["mask", "face", "celeb_mask"])
    with pytest.raises(ModelContractError, match="outputs are"):
        FaceSwapper(wrong)


def test_tensorrt_gets_its_engine_cache_beside_the_model_and_others_stay_plain(tmp_path):
    """The live loop and `swapcam export --trt-cache` agree on one cache folder per model, so an
    engine built once (tens of seconds) is reused by every later start."""
    model = tmp_path / "models" / "me.onnx"
    settings = provider_settings(["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"], model)
    name, options = settings[0]
    assert name == "TensorrtExecutionProvider" and settings[1:] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert options["trt_engine_cache_enable"] and options["trt_fp16_enable"]
    assert Path(options["trt_engine_cache_path"]) == tensorrt_cache_dir(model) == tmp_path / "models" / "me.onnx.trt"
