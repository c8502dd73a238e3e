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
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--trt-cache", action="store_true",
                   help="also build the TensorRT engine cache the live loop reads (OUT.trt/, beside the model), so the "
                        "first live run starts at once; only where onnxruntime has TensorRT, on the GPU that will run it")


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
        info = export_checkpoint(ExportRequest(
            checkpoint=Path(args.checkpoint), out=Path(args.out), fp16=args.fp16, identity=args.identity,
            consent=args.consent, data_credits=args.credits, force=args.force))
        if args.trt_cache:
            print(f"TensorRT engine cache in {build_tensorrt_cache(info.path)}")
    except (CheckpointError, ExportError, ModelContractError, ValueError) as exc:
        print(f"swapcam export: error: {exc}", file=sys.stderr)
        return 2
    meta = info.metadata
    print(f"wrote {info.path}: {info.resolution} px {info.face_type}, identity {info.identity!r}, "
          f"{meta.get('swapcam.architecture')}, {meta.get('swapcam.training_steps')} steps")
    return 0
