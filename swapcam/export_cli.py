"""`swapcam export CHECKPOINT --out models/NAME.onnx`: one DFM-compatible ONNX model from a run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="checkpoint.pt, or the run folder holding it")
    p.add_argument("--out", required=True,
                   help="the model file to write: models/NAME.onnx, or NAME.dfm (the same bytes under DeepFaceLab's "
                        "name, which DeepFaceLive's model list needs)")
    p.add_argument("--fp16", action="store_true", help="store the weights in float16 (inputs/outputs stay float32)")
    p.add_argument("--identity", default=None, help="name of the identity the model shows (default: the run's)")
    p.add_argument("--consent", default=None, metavar="TEXT",
                   help="REQUIRED: who consented to their face being shown by this model, to what, when (or the licence "
                        "that allows it); recorded in the model and printed whenever it is used")
    p.add_argument("--credits", default="not stated",
                   help="authors, sources and licences of the training data (CC BY needs them), recorded in the model")
    p.add_argument("--int8", metavar="FACES", default=None,
                   help="write the model with INT8 weights and activations (ONNX Runtime's static QDQ quantiser), "
                        "calibrated on the aligned faces of the faceset FACES (faces like the users', e.g. your "
                        "--dst faceset); on a CPU with VNNI a model from the base runs about 14 %% faster per face, "
                        "identity unchanged on `swapcam eval` (README, Swap live)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--trt-cache", action="store_true",
                   help="also build the TensorRT engine cache the live loop reads (OUT.trt/, beside the model), so the "
                        "first live run starts at once; only where onnxruntime has TensorRT, on the GPU that will run it")


def _export_int8(request, faces: Path):
    """Export the float model beside ``request.out`` (a hidden temporary), write its INT8 copy as ``request.out``."""
    import dataclasses

    from realtime.swap.model_contract import read_model_info
    from training.export import ExportError, export_checkpoint
    from training.faceset import Faceset
    from training.quantize import quantize_model

    Faceset.open(faces)  # a bad FACES is an error before anything is written
    out = request.out
    if out.exists() and not request.force:
        raise ExportError(f"{out} exists; refusing to overwrite it (pass --force, or choose another --out)")
    float_model = out.with_name(f".{out.stem}.float{out.suffix}")
    try:
        export_checkpoint(dataclasses.replace(request, out=float_model, force=True))
        quantize_model(float_model, faces, out)
    finally:
        float_model.unlink(missing_ok=True)
    return read_model_info(out)


def main(args: argparse.Namespace) -> int:
    from realtime.swap.model_contract import ModelContractError
    from training.checkpoint import CheckpointError
    from training.export import (
        ExportError,
        ExportRequest,
        build_tensorrt_cache,
        check_consent,
        export_checkpoint,
        require_tensorrt,
    )

    try:
        check_consent(args.consent)
        if args.trt_cache:
            require_tensorrt()  # before anything is written
        request = ExportRequest(
            checkpoint=Path(args.checkpoint), out=Path(args.out), fp16=args.fp16, identity=args.identity,
            consent=args.consent, data_credits=args.credits, force=args.force)
        info = export_checkpoint(request) if args.int8 is None else _export_int8(request, Path(args.int8))
        if args.trt_cache:
            print(f"TensorRT engine cache in {build_tensorrt_cache(info.path)}")
    except (CheckpointError, ExportError, ModelContractError, ValueError) as exc:
        print(f"swapcam export: error: {exc}", file=sys.stderr)
        return 2
    meta = info.metadata
    print(f"wrote {info.path}: {info.resolution} px {info.face_type}, identity {info.identity!r}, "
          f"{meta.get('swapcam.architecture')}, {meta.get('swapcam.training_steps')} steps" + (", INT8" if args.int8 else ""))
    return 0
