"""Contract 1 validation: files that break it are refused with a message that says what is wrong.

The graphs here are built with onnx.helper to break the contract in one way each; the trainer's
own exports are checked against the contract in tests/test_export.py.
"""

import json

import onnx
import pytest
from onnx import TensorProto, helper

from realtime.swap.model_contract import (
    INPUT_NAME,
    METADATA_KEYS,
    OUTPUT_NAMES,
    ModelContractError,
    build_metadata,
    read_model_info,
)


def _graph_model(path, *, inputs=(INPUT_NAME,), outputs=OUTPUT_NAMES, res=64, channels=(1, 3, 1), metadata=None):
    """A tiny real ONNX graph: every output is a slice/identity of the input face."""
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", res, res, 3] if n == INPUT_NAME else [1]) for n in inputs]
    nodes, outs = [], []
    for name, ch in zip(outputs, channels):
        starts = helper.make_tensor(f"{name}_s", TensorProto.INT64, [1], [0])
        ends = helper.make_tensor(f"{name}_e", TensorProto.INT64, [1], [ch])
        axes = helper.make_tensor(f"{name}_a", TensorProto.INT64, [1], [3])
        nodes += [helper.make_node("Constant", [], [f"{name}_{k}"], value=t) for k, t in (("s", starts), ("e", ends), ("a", axes))]
        nodes.append(helper.make_node("Slice", [inputs[0], f"{name}_s", f"{name}_e", f"{name}_a"], [name]))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", res, res, ch]))
    model = helper.make_model(helper.make_graph(nodes, "g", ins, outs), opset_imports=[helper.make_opsetid("", 17)])
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_bare_dfm_loads_with_stated_defaults(tmp_path):
    info = read_model_info(_graph_model(tmp_path / "celeb.dfm"))
    assert (info.resolution, info.face_type, info.identity) == (64, "whole_face", "celeb")
    assert not info.self_described and not info.has_morph_input
    assert read_model_info(tmp_path / "celeb.dfm", face_type="full").face_type == "full"


def test_amp_model_with_morph_input_is_accepted(tmp_path):
    info = read_model_info(_graph_model(tmp_path / "amp.onnx", inputs=(INPUT_NAME, "morph_value:0")))
    assert info.has_morph_input


def test_metadata_describes_the_model(tmp_path):
    meta = build_metadata(face_type="full", resolution=64, identity="Ada", architecture="df-lite", training_steps=10,
                          training_data=[{"source": "x.mp4", "faces": 3}], consent="test", created="2026-01-01T00:00:00Z")
    assert set(meta) == set(METADATA_KEYS)
    info = read_model_info(_graph_model(tmp_path / "m.onnx", metadata=meta))
    assert info.self_described and info.face_type == "full" and info.identity == "Ada"
    assert len(json.loads(info.metadata["swapcam.landmark_template"])) == 33


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(inputs=("input",)), "no input named"),
        (dict(outputs=tuple(reversed(OUTPUT_NAMES))), "in that order"),
        (dict(channels=(1, 1, 1)), "channels"),
        (dict(inputs=(INPUT_NAME, "extra:0")), "unexpected inputs"),
    ],
)
def test_contract_breaking_models_are_refused(tmp_path, kwargs, message):
    with pytest.raises(ModelContractError, match=message):
        read_model_info(_graph_model(tmp_path / "bad.onnx", **kwargs))


def test_missing_and_non_onnx_files_are_refused(tmp_path):
    with pytest.raises(ModelContractError, match="not found"):
        read_model_info(tmp_path / "nope.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00this is not a protobuf\xff" * 10)
    with pytest.raises(ModelContractError, match="not an ONNX model"):
        read_model_info(junk)


def test_metadata_resolution_must_match_the_graph(tmp_path):
    with pytest.raises(ModelContractError, match="resolution"):
        read_model_info(_graph_model(tmp_path / "m.onnx", metadata={"swapcam.resolution": "128"}))


def test_crop_scale_comes_from_metadata_else_one_and_can_be_overridden(tmp_path):
    """A model trained on other tools' crops says so in swapcam.crop_scale; a bare .dfm is DeepFaceLab's crop (1)."""
    assert read_model_info(_graph_model(tmp_path / "bare.dfm")).crop_scale == 1.0
    tight = read_model_info(_graph_model(tmp_path / "tight.onnx", metadata={"swapcam.crop_scale": "0.92"}))
    assert tight.crop_scale == 0.92
    assert read_model_info(tmp_path / "tight.onnx", crop_scale=1.05).crop_scale == 1.05
    with pytest.raises(ModelContractError, match="swapcam.crop_scale: crop scale 7"):
        read_model_info(_graph_model(tmp_path / "bad.onnx", metadata={"swapcam.crop_scale": "7"}))
    with pytest.raises(ModelContractError, match="--crop-scale"):
        read_model_info(tmp_path / "bare.dfm", crop_scale=0.1)
