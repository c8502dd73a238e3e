"""measure.quantize: an INT8 copy of a real exported model, calibrated on real aligned faces with ONNX Runtime's
own static QDQ quantiser, keeps the model's metadata and draws nearly the same face as the float model."""

from __future__ import annotations

import numpy as np
import onnx

from measure.quantize import calibration_feeds, cpu_ms, quantize
from realtime.swap.model_contract import read_model_info
from realtime.swap.swapper import create_session


def test_int8_copy_keeps_metadata_and_output(exported_model, astronaut_faceset, tmp_path):
    out = quantize(exported_model, astronaut_faceset, tmp_path, "conv_gemm", count=4)
    assert out.name == f"{exported_model.stem}_int8_conv_gemm.onnx"
    assert read_model_info(out).identity == read_model_info(exported_model).identity == "astronaut"
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    feed = calibration_feeds(exported_model, astronaut_faceset, 2)[1]
    assert feed["in_face:0"].shape == (1, 128, 128, 3) and 0.2 < feed["in_face:0"].mean() < 0.8  # a real face
    faces = [create_session(p, ["CPUExecutionProvider"], threads=1).run(None, feed)[1] for p in (exported_model, out)]
    assert np.abs(faces[0] - faces[1]).mean() < 0.05  # int8 rounding, not another picture
    ms = cpu_ms({"float": exported_model, "int8": out}, feed, runs=3)
    assert set(ms) == {"float", "int8"} and all(v > 0 for v in ms.values())


def test_export_int8_writes_one_calibrated_model_and_refuses_bad_faces(trained_run, grace_hopper_faceset, tmp_path):
    """`swapcam export --int8 FACES`: OUT is the INT8 model (QDQ ops, the run's metadata and a quantisation
    record naming its calibration faces), nothing else is left beside it; a FACES that is not a faceset is a
    one-line error before anything is written."""
    import json

    from swapcam.cli import main as swapcam

    consent = ["--consent", "public-domain test image (NASA portrait of Eileen Collins)"]
    out = tmp_path / "m.onnx"
    assert swapcam(["export", str(trained_run.checkpoint), "--out", str(out), "--int8", str(grace_hopper_faceset),
                    *consent]) == 0
    proto = onnx.load(str(out))
    assert "QuantizeLinear" in {n.op_type for n in proto.graph.node}
    meta = {p.key: p.value for p in proto.metadata_props}
    record = json.loads(meta["swapcam.quantization"])
    assert record["variant"] == "all" and record["calibration"].endswith("faces of grace_hopper")
    assert read_model_info(out).identity and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
    bad = tmp_path / "bad.onnx"
    assert swapcam(["export", str(trained_run.checkpoint), "--out", str(bad), "--int8", str(tmp_path / "nope"),
                    *consent]) == 2
    assert not bad.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
