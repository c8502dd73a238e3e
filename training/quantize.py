"""INT8 copies of a swap model, made with ONNX Runtime's own quantisation tools (static QDQ).

``quantize_model(MODEL, FACESET, OUT)``: weights int8 per channel, activations uint8, calibrated on real aligned
faces of FACESET and, for reference-prior models, the model's own reference warped onto each face's mesh (what
the live loop feeds it). ``swapcam export --int8 FACES`` and ``python -m measure.quantize`` (which also times the
copies) use it. Variants: ``all`` (every op ORT can quantise), ``conv_gemm`` (convolutions and dense layers
only), ``pointwise`` (also leaving the depthwise convolutions in float: ORT's int8 depthwise kernels are slow).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

VARIANTS = ("all", "conv_gemm", "pointwise")
QUANTIZATION_KEY = "swapcam.quantization"


def float32_copy(model_path: Path, out: Path) -> None:
    """The model with its float16 initialisers (and their Cast nodes) turned back into float32: the
    quantiser's input."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(model_path))
    halves = {i.name for i in proto.graph.initializer if i.data_type == onnx.TensorProto.FLOAT16}
    casts = {n.output[0]: n.input[0] for n in proto.graph.node if n.op_type == "Cast" and n.input[0] in halves}
    inits = [numpy_helper.from_array(numpy_helper.to_array(i).astype(np.float32), name)
             for name, half in casts.items() for i in proto.graph.initializer if i.name == half]
    keep = [i for i in proto.graph.initializer if i.name not in halves]
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(keep + inits)
    nodes = [n for n in proto.graph.node if not (n.op_type == "Cast" and n.input[0] in halves)]
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    onnx.save(proto, str(out))


def calibration_feeds(model_path: Path, faceset: Path, count: int) -> list[dict[str, np.ndarray]]:
    """``count`` feeds of real aligned faces from ``faceset`` (cut to the model's face type and size by the
    faces' landmarks), with the model's reference warped onto each (prior models), one face per feed."""
    import cv2

    from realtime.face.alignment import align_matrix, compose, invert
    from realtime.swap.model_contract import INPUT_NAME, PRIOR_INPUT_NAME
    from realtime.swap.swapper import FaceSwapper
    from training.faceset import Faceset
    from training.faceset_mesh import faceset_meshes

    swapper = FaceSwapper(model_path, threads=1)
    fs = Faceset.open(faceset)
    meshes = faceset_meshes(fs, progress=False) if swapper.needs_mesh else {}
    r = swapper.resolution
    picks = np.linspace(0, len(fs.records) - 1, count).round().astype(int)
    feeds = []
    for i in picks:
        rec = fs.records[int(i)]
        matrix = align_matrix(np.asarray(rec.landmarks), r, swapper.face_type, swapper.crop_scale)
        to_model = compose(matrix, invert(np.asarray(rec.matrix)))
        face = cv2.warpAffine(fs.load_image(rec), to_model, (r, r), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        feed = {INPUT_NAME: face[None].astype(np.float32) / 255.0}
        if swapper.needs_mesh:
            if rec.file not in meshes:
                continue
            mesh = meshes[rec.file] @ to_model[:, :2].T + to_model[:, 2]
            feed[PRIOR_INPUT_NAME] = swapper._prior(mesh.astype(np.float32))[None].astype(np.float32) / 255.0
        feeds.append(feed)
    return feeds


def quantize_model(model_path: Path, faceset: Path, out: Path, variant: str = "all", count: int = 64) -> Path:
    """Write ``out``, an INT8 copy of ``model_path`` (static QDQ, per-channel int8 weights, uint8 activations,
    calibrated on ``count`` faces of ``faceset``), atomically, with the model's metadata and a
    ``swapcam.quantization`` record; returns ``out``. ValueError for an unknown variant or no usable face."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if variant not in VARIANTS:
        raise ValueError(f"unknown INT8 variant {variant!r}: one of {', '.join(VARIANTS)}")
    feeds = calibration_feeds(model_path, faceset, count)
    if not feeds:
        raise ValueError(f"{faceset}: no face to calibrate the INT8 model on")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(feeds)

        def get_next(self):
            return next(self.it, None)

    tmp = Path(tempfile.mkdtemp(prefix="quantize_"))
    float32_copy(model_path, tmp / "fp32.onnx")
    quant_pre_process(str(tmp / "fp32.onnx"), str(tmp / "pre.onnx"), skip_symbolic_shape=True)
    pre = onnx.load(str(tmp / "pre.onnx"))
    options: dict = {}
    if variant in ("conv_gemm", "pointwise"):
        options["op_types_to_quantize"] = ["Conv", "Gemm"]
    if variant == "pointwise":
        options["nodes_to_exclude"] = [n.name for n in pre.graph.node if n.op_type == "Conv"
                                       and any(a.name == "group" and a.i > 1 for a in n.attribute)]
    out = Path(out)
    try:
        quantize_static(str(tmp / "pre.onnx"), str(tmp / "int8.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, **options)
        proto = onnx.load(str(tmp / "int8.onnx"))  # the quantiser drops metadata_props: put the model's own back
        del proto.metadata_props[:]
        proto.metadata_props.extend(p for p in onnx.load(str(model_path), load_external_data=False).metadata_props
                                    if p.key != QUANTIZATION_KEY)
        proto.metadata_props.add(key=QUANTIZATION_KEY, value=json.dumps(
            {"type": "int8 static QDQ (onnxruntime.quantization)", "variant": variant,
             "calibration": f"{len(feeds)} faces of {Path(faceset).name}"}))
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, part = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".onnx.tmp", dir=out.parent)
        os.close(fd)
        try:
            onnx.save(proto, part)
            os.chmod(part, 0o644)
            os.replace(part, out)
        finally:
            Path(part).unlink(missing_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
