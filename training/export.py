"""Export a trained checkpoint as one DFM-compatible ONNX model (DESIGN.md contract 1).

The graph is encoder (+inter) + src decoder (+ the dst side's mask branch, which gives
``out_face_mask:0``, as DeepFaceLab's DFM export does), wrapped so that the input is
``in_face:0`` float32 [N, R, R, 3] NHWC BGR in [0, 1] and the outputs are, in order,
``out_face_mask:0``, ``out_celeb_face:0``, ``out_celeb_face_mask:0`` in NHWC. The batch is dynamic
and every input and output declares its shape as ``[batch, R, R, C]`` (one symbol for the batch), so
tools that trust declared shapes (TensorRT, OpenVINO, converters) read the contract from the file.
Our ``metadata_props`` come from ``realtime.swap.model_contract.build_metadata``. ``--out NAME.dfm`` writes
the same bytes under DeepFaceLab's file name (DeepFaceLive lists only ``*.dfm`` files).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from realtime.swap.model_contract import (
    BASE_METADATA_KEY,
    INPUT_NAME,
    OUTPUT_NAMES,
    PRIOR_INPUT_NAME,
    ModelInfo,
    build_metadata,
    read_model_info,
)
from realtime.swap.swapper import create_session, tensorrt_cache_dir
from training.model import FaceSwapModel

ONNX_OPSET = 17
MODEL_SUFFIXES = (".onnx", ".dfm")  # a .dfm is the same ONNX file under DeepFaceLab's name
BATCH_DIM = "batch"


class ExportError(RuntimeError):
    """An export that cannot be done as asked (existing output, bad checkpoint, failed validation)."""


class SwapGraph(nn.Module):
    """NHWC [0, 1] BGR in -> (face mask, swapped face, swapped mask) NHWC out.

    The model is trained on BGR images as the faceset stores them, so no channel flip is needed.
    """

    def __init__(self, model: FaceSwapModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, face: torch.Tensor, prior: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = face.permute(0, 3, 1, 2)
        mask, celeb, celeb_mask = self.model.swap(x, None if prior is None else prior.permute(0, 3, 1, 2))
        return mask.permute(0, 2, 3, 1), celeb.permute(0, 2, 3, 1), celeb_mask.permute(0, 2, 3, 1)


def export_onnx_graph(model: FaceSwapModel, path: Path, fp16: bool = False) -> None:
    """Write the swap graph of ``model`` to ``path`` (no metadata). fp16: half weights, fp32 I/O."""
    import onnx

    res = model.config.resolution
    graph = SwapGraph(model).eval().float()
    inputs = [INPUT_NAME] + ([PRIOR_INPUT_NAME] if model.config.prior else [])
    examples = tuple(torch.rand(1, res, res, 3) for _ in inputs)
    with torch.no_grad():
        # The legacy TorchScript exporter: exact names, dynamic batch, stable on torch 2.13 + onnx 1.22.
        torch.onnx.export(
            graph, examples, str(path), input_names=inputs, output_names=list(OUTPUT_NAMES),
            dynamic_axes={**{n: {0: "batch"} for n in inputs}, **{n: {0: "batch"} for n in OUTPUT_NAMES}},
            opset_version=ONNX_OPSET, do_constant_folding=True, dynamo=False,
        )
    proto = onnx.load(str(path))
    if fp16:
        proto = to_fp16_weights(proto)
    onnx.save(declare_io_shapes(proto, res), str(path))


def declare_io_shapes(proto, resolution: int):
    """Declare ``in_face:0`` and the three outputs as ``[batch, R, R, C]`` (contract 1), after checking
    that ONNX shape inference (strict) computes exactly those outputs from that input; returns ``proto``.

    The TorchScript exporter declares the outputs' dims from its own shape tracking, which loses them
    after the decoder's reshape (``['batch', 'batch', 'Transpose...dim_2', C]``): ONNX Runtime ignores
    declared shapes, TensorRT, OpenVINO and converters do not.
    """
    import onnx

    def declare(value_info, dims: list) -> None:
        shape = value_info.type.tensor_type.shape
        del shape.dim[:]
        for d in dims:
            if isinstance(d, str):
                shape.dim.add().dim_param = d
            else:
                shape.dim.add().dim_value = d

    graph = proto.graph
    initializers = {t.name for t in graph.initializer}
    face_input = next(i for i in graph.input if i.name == INPUT_NAME and i.name not in initializers)
    outputs = sorted(graph.output, key=lambda o: OUTPUT_NAMES.index(o.name))
    expected = {name: [resolution, resolution, c] for name, c in zip(OUTPUT_NAMES, (1, 3, 1))}
    declare(face_input, [BATCH_DIM, resolution, resolution, 3])
    del graph.value_info[:]  # the exporter's intermediate shapes carry the same confusion
    for out in outputs:
        out.type.tensor_type.ClearField("shape")
    try:
        inferred = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    except onnx.shape_inference.InferenceError as exc:
        raise ExportError(f"ONNX shape inference fails on the exported graph with input [batch, {resolution}, "
                          f"{resolution}, 3]: {exc}") from exc
    for out in inferred.graph.output:
        dims = [d.dim_value if d.HasField("dim_value") else None for d in out.type.tensor_type.shape.dim]
        if dims[1:] != expected[out.name]:
            raise ExportError(f"{out.name}: the graph computes [N, {dims[1:]}], not [N, {expected[out.name]}]")
    for out in outputs:
        declare(out, [BATCH_DIM, *expected[out.name]])
    return proto


def to_fp16_weights(proto):
    """Convert the float32 initializers to float16 and cast them back to float32 at use.

    Halves the file and the weight memory while inputs, outputs and arithmetic stay float32, so
    every runtime (CPU included) can run it. Execution providers that fuse Cast into the consumer
    (TensorRT, CUDA with fp16) run the convolutions in half precision.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    graph = proto.graph
    new_inits, casts = [], []
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype != np.float32:
            new_inits.append(init)
            continue
        half_name = init.name + "_fp16"
        new_inits.append(numpy_helper.from_array(arr.astype(np.float16), half_name))
        casts.append(helper.make_node("Cast", [half_name], [init.name], to=onnx.TensorProto.FLOAT,
                                      name=init.name + "_cast"))
    del graph.initializer[:]
    graph.initializer.extend(new_inits)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.checker.check_model(proto)
    return proto


@dataclass(frozen=True)
class ExportRequest:
    """What to export and how it describes itself."""

    checkpoint: Path
    out: Path
    fp16: bool = False
    identity: str | None = None
    consent: str = ""  # required: ``check_consent`` refuses an empty record
    data_credits: str = "not stated"
    force: bool = False
    crop_scale: float | None = None  # None: the run's (its facesets' crop), else 1


NO_CONSENT = ("", "not stated", "none", "n/a", "unknown")


def check_consent(consent: str | None) -> str:
    """The consent record, stripped; ExportError, saying why it is needed, when there is none."""
    text = (consent or "").strip()
    if text.lower() in NO_CONSENT:
        raise ExportError(
            "--consent TEXT is required: a model shows a real person's face, so it must record who consented to "
            "that and to what (or the licence that allows it), e.g. --consent \"Jane Doe, written consent of "
            "2025-03-01 for video calls with her team\". It is stored in the model and printed whenever it is used")
    return text


def export_checkpoint(req: ExportRequest) -> ModelInfo:
    """Export ``req.checkpoint`` to ``req.out`` atomically and return the validated ModelInfo.

    Refuses (ExportError) a request without a consent record, before anything is read or written.
    """
    import onnx

    from training.checkpoint import load_checkpoint

    consent = check_consent(req.consent)
    out = Path(req.out)
    if out.exists() and not req.force:
        raise ExportError(f"{out} exists; refusing to overwrite it (pass --force, or choose another --out)")
    if out.suffix.lower() not in MODEL_SUFFIXES:
        raise ExportError(f"--out must end in .onnx (or .dfm, the same file under DeepFaceLab's name), got {out.name}")
    ckpt = load_checkpoint(req.checkpoint)
    model = ckpt.build_model()
    cfg, run = model.config, ckpt.run_config
    identity = req.identity or run.get("identity") or Path(run.get("src", "src")).name
    metadata = build_metadata(
        face_type=run["face_type"], resolution=cfg.resolution, identity=identity,
        architecture=f"{cfg.arch}:{cfg.preset}" + (":fp16" if req.fp16 else ""),
        training_steps=ckpt.step, training_data=run.get("training_data", []), consent=consent,
        data_credits=req.data_credits,
        crop_scale=req.crop_scale if req.crop_scale is not None else run.get("crop_scale", 1.0),
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    if run.get("base"):  # the pretrained base this run started from, with the credits of the data it saw
        metadata[BASE_METADATA_KEY] = json.dumps(run["base"])
    if cfg.prior:
        from training.prior import load_reference

        run_dir = ckpt.path.parent if ckpt.path.is_file() else ckpt.path
        reference = load_reference(run_dir)
        if reference is None:
            raise ExportError(f"{run_dir} holds a prior model but no reference.npz: the reference cannot be embedded")
        metadata.update(reference.to_metadata())
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=f"{out.suffix}.tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        export_onnx_graph(model, tmp, fp16=req.fp16)
        proto = onnx.load(str(tmp))
        del proto.metadata_props[:]
        for key, value in metadata.items():
            proto.metadata_props.add(key=key, value=value)
        proto.doc_string = f"swapcam {cfg.arch} ({cfg.preset}) face swap model, identity {identity}"
        onnx.save(proto, str(tmp))
        info = read_model_info(tmp)  # validate before it takes the final name
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a model file is for sharing
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return dataclasses.replace(info, path=out)


def tensorrt_available() -> bool:
    """True where onnxruntime offers the TensorRT execution provider."""
    import onnxruntime as ort

    return "TensorrtExecutionProvider" in ort.get_available_providers()


def require_tensorrt() -> None:
    """Raise ExportError, saying where to build the cache instead, unless onnxruntime has TensorRT here."""
    import onnxruntime as ort

    if not tensorrt_available():
        raise ExportError(
            "--trt-cache needs TensorRT, which onnxruntime does not offer here (providers: "
            f"{', '.join(ort.get_available_providers())}); export without --trt-cache, and build the cache on "
            "the machine that will run the model (onnxruntime-gpu with TensorRT) with `swapcam export --trt-cache`"
        )


def build_tensorrt_cache(model_path: Path) -> Path:
    """Build the TensorRT engine cache for ``model_path`` (the folder the live loop reads, beside the
    model) by running it once through ORT's TensorRT provider. Raises ExportError where TensorRT is absent."""
    import numpy as np

    require_tensorrt()
    info = read_model_info(model_path)
    sess = create_session(model_path, ["TensorrtExecutionProvider", "CUDAExecutionProvider"])
    # TensorRT's dynamic-batch profile grows to the shapes it has seen (explicit trt_profile_* shapes
    # cannot name DFM's "in_face:0", onnxruntime#18939): one face, then four, so 1..4 faces never rebuild
    for faces in (1, 4):
        sess.run(None, {INPUT_NAME: np.random.rand(faces, info.resolution, info.resolution, 3).astype(np.float32)})
    return tensorrt_cache_dir(model_path)
