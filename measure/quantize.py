"""INT8 versions of a swap model, made with ONNX Runtime's own quantisation tools, and their CPU cost.

``python -m measure.quantize MODEL.onnx --faces FACESET --out DIR`` writes static-QDQ INT8 copies of
MODEL (weights int8 per channel, activations uint8, calibrated on real aligned faces of FACESET and, for
reference-prior models, the model's own reference warped onto each face's mesh: what the live loop
feeds it), in the variants below, and times every copy against the float model, interleaved, one thread,
CPU time per call. Score a copy's quality with `swapcam eval ... --model DIR/NAME.onnx` (the metadata is
kept, so it is a complete model file).

Variants: ``all`` (every op ORT can quantise), ``conv_gemm`` (convolutions and dense layers only),
``pointwise`` (also leaving the depthwise convolutions in float: ORT's int8 depthwise kernels are slow).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

VARIANTS = ("all", "conv_gemm", "pointwise")


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


def quantize(model_path: Path, faceset: Path, out_dir: Path, variant: str, count: int = 64) -> Path:
    """Write ``out_dir/STEM_int8_VARIANT.onnx`` (static QDQ, per-channel int8 weights, uint8 activations)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    feeds = calibration_feeds(model_path, faceset, count)

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
    out = out_dir / f"{model_path.stem}_int8_{variant}.onnx"
    out_dir.mkdir(parents=True, exist_ok=True)
    quantize_static(str(tmp / "pre.onnx"), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, **options)
    proto = onnx.load(str(out))  # the quantiser drops metadata_props: put the model's own back
    del proto.metadata_props[:]
    proto.metadata_props.extend(onnx.load(str(model_path), load_external_data=False).metadata_props)
    onnx.save(proto, str(out))
    return out


def cpu_ms(paths: dict[str, Path], feed: dict[str, np.ndarray], runs: int) -> dict[str, float]:
    """Median CPU ms per call of each model (ONNX Runtime, 1 thread, no spinning), calls interleaved."""
    from realtime.swap.swapper import create_session

    sessions = {k: create_session(p, ["CPUExecutionProvider"], threads=1) for k, p in paths.items()}
    times: dict[str, list[float]] = {k: [] for k in paths}
    for i in range(runs + 5):
        for k, s in sessions.items():
            t = time.process_time()
            s.run(None, feed)
            if i >= 5:
                times[k].append((time.process_time() - t) * 1000)
    return {k: float(np.median(v)) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m measure.quantize", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--faces", type=Path, required=True, help="faceset of real faces to calibrate on")
    parser.add_argument("--out", type=Path, required=True, help="folder for the INT8 models and quantize.json")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--calibration-faces", type=int, default=64)
    parser.add_argument("--runs", type=int, default=200, help="timed calls per model")
    args = parser.parse_args(argv)
    paths = {"float": args.model}
    for variant in args.variants.split(","):
        paths[f"int8 {variant}"] = quantize(args.model, args.faces, args.out, variant, args.calibration_faces)
    feed = calibration_feeds(args.model, args.faces, 1)[0]
    ms = cpu_ms(paths, feed, args.runs)
    from realtime.util.atomic_files import write_text

    write_text(args.out / "quantize.json", json.dumps({"model": str(args.model), "cpu_ms_per_face": ms,
                                                       "files": {k: str(v) for k, v in paths.items()}}, indent=2))
    for k, v in ms.items():
        print(f"{k:16s} {v:6.2f} ms CPU per face (1 thread, median of {args.runs})  {paths[k].name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
