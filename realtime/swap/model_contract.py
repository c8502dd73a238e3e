"""The model file both halves agree on (DESIGN.md contract 1): DeepFaceLab DFM names plus our metadata.

Input ``in_face:0`` float32 [N, R, R, 3] NHWC BGR in [0, 1] (AMP models add ``morph_value:0`` [1];
our reference-prior models add ``in_prior:0`` [N, R, R, 3], the target's reference face, carried in
the metadata, warped onto the input face's mesh: such a model is not a plain DFM);
outputs, in order, ``out_face_mask:0`` [N, R, R, 1], ``out_celeb_face:0`` [N, R, R, 3],
``out_celeb_face_mask:0`` [N, R, R, 1]. Our exports also carry ``metadata_props`` (``METADATA_KEYS``)
so a model describes itself; a ``.dfm`` without them loads with the stated defaults.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

INPUT_NAME = "in_face:0"
MORPH_INPUT_NAME = "morph_value:0"
PRIOR_INPUT_NAME = "in_prior:0"
DEFAULT_MORPH_VALUE = 0.75
OUTPUT_NAMES = ("out_face_mask:0", "out_celeb_face:0", "out_celeb_face_mask:0")
FORMAT_VERSION = "1"

# Metadata keys written by our exporter, each with its meaning.
METADATA_KEYS: dict[str, str] = {
    "swapcam.format_version": "version of this contract",
    "swapcam.face_type": "alignment face type: half, mid_full, full, whole_face, head",
    "swapcam.coverage": "the face type's padding in template units (DeepFaceLab's value)",
    "swapcam.crop_scale": "side of the crop the model was trained on over DeepFaceLab's crop of the face type "
                          "(1 = DeepFaceLab's; below 1 tighter); the live loop cuts faces the same way",
    "swapcam.resolution": "R, the aligned face's side in pixels",
    "swapcam.channel_order": "BGR",
    "swapcam.layout": "NHWC",
    "swapcam.value_range": "0,1",
    "swapcam.landmark_template": "JSON: the 33 template points (unit square) the alignment fits",
    "swapcam.identity": "name of the target identity the model shows",
    "swapcam.architecture": "df or liae, and the preset",
    "swapcam.training_steps": "optimiser steps trained",
    "swapcam.training_data": "JSON: the facesets trained on (source files, face counts, licences)",
    "swapcam.consent": "the consent basis for showing the identity",
    "swapcam.data_credits": "authors, sources and licences of the training data",
    "swapcam.created": "ISO 8601 time of export",
}
# ... and, for models fine-tuned from a pretrained base (training.base): which base, and its data's credits
BASE_METADATA_KEY = "swapcam.base"
# ... and, for reference-prior models only (those with the in_prior:0 input):
PRIOR_METADATA_KEYS: dict[str, str] = {
    "swapcam.prior": "how in_prior:0 is made (mesh_warp_v1: realtime.swap.mesh_warp of the reference)",
    "swapcam.prior_reference_png": "base64 PNG of the reference face, aligned, R x R",
    "swapcam.prior_reference_mesh": "JSON (478, 2) mesh of the reference face, aligned pixels",
    "swapcam.prior_reference_source": "which faceset image the reference is",
}
DFM_DEFAULTS = {"swapcam.face_type": "whole_face", "swapcam.channel_order": "BGR", "swapcam.value_range": "0,1"}


class ModelContractError(ValueError):
    """A model file that is missing, not ONNX, or breaks contract 1."""


class NotAFaceModelError(ModelContractError):
    """One of swapcam's own helper models (e.g. the occlusion model): valid, but not a face to swap to."""


# Metadata prefixes of swapcam's helper models, with what each one does (said when one is given as a target).
HELPER_MODELS = {"swapcam.occlusion.": "swapcam's occlusion model (it marks what is in front of the face; it runs by "
                                       "itself with --occlusion on)"}


@dataclass(frozen=True)
class ModelInfo:
    """What a model file says about itself, after validation."""

    path: Path
    resolution: int
    face_type: str
    identity: str
    has_morph_input: bool
    metadata: dict[str, str] = field(default_factory=dict)
    has_prior_input: bool = False
    crop_scale: float = 1.0

    @property
    def self_described(self) -> bool:
        """True for our exports (metadata present), False for a bare DFM loaded with defaults."""
        return "swapcam.format_version" in self.metadata


def _dims(value_info) -> list:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in value_info.type.tensor_type.shape.dim]


def read_model_info(path: str | Path, face_type: str | None = None, crop_scale: float | None = None) -> ModelInfo:
    """Validate ``path`` against contract 1 and return its description.

    ``face_type`` and ``crop_scale`` override the file's (or the DFM defaults, whole_face and 1). Raises
    ModelContractError saying what is wrong: a missing file, a file that is not ONNX, wrong input/output
    names, shapes or order, metadata that contradicts the graph.
    """
    import onnx

    from realtime.face.alignment import check_crop_scale, check_face_type

    path = Path(path)
    if not path.is_file():
        raise ModelContractError(f"model file not found: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others for non-ONNX bytes
        raise ModelContractError(f"{path} is not an ONNX model ({type(exc).__name__}: {exc})") from exc
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    input_names = [i.name for i in inputs]
    keys = [p.key for p in model.metadata_props]
    for prefix, what in HELPER_MODELS.items():
        if any(k.startswith(prefix) for k in keys):
            raise NotAFaceModelError(f"{path} is {what}, not a face to swap to")
    if INPUT_NAME not in input_names:
        raise ModelContractError(f"{path}: no input named {INPUT_NAME!r} (inputs: {input_names}); not a DFM-compatible face model")
    extra = set(input_names) - {INPUT_NAME, MORPH_INPUT_NAME, PRIOR_INPUT_NAME}
    if extra:
        raise ModelContractError(f"{path}: unexpected inputs {sorted(extra)}; only {INPUT_NAME}, {MORPH_INPUT_NAME} "
                                 f"and {PRIOR_INPUT_NAME} are allowed")
    output_names = tuple(o.name for o in graph.output)
    if output_names != OUTPUT_NAMES:
        raise ModelContractError(f"{path}: outputs are {list(output_names)}, expected {list(OUTPUT_NAMES)} in that order")
    in_dims = _dims(next(i for i in inputs if i.name == INPUT_NAME))
    if len(in_dims) != 4 or in_dims[3] != 3 or not isinstance(in_dims[1], int) or in_dims[1] != in_dims[2]:
        raise ModelContractError(f"{path}: input {INPUT_NAME} has shape {in_dims}, expected [N, R, R, 3] with fixed R")
    resolution = int(in_dims[1])
    for out, channels in zip(graph.output, (1, 3, 1)):
        dims = _dims(out)
        if len(dims) == 4 and isinstance(dims[3], int) and dims[3] != channels:
            raise ModelContractError(f"{path}: output {out.name} has {dims[3]} channels, expected {channels}")
    metadata = {p.key: p.value for p in model.metadata_props}
    merged = {**DFM_DEFAULTS, **metadata}
    has_prior = PRIOR_INPUT_NAME in input_names
    if has_prior:
        prior_dims = _dims(next(i for i in inputs if i.name == PRIOR_INPUT_NAME))
        if prior_dims[1:] != in_dims[1:]:
            raise ModelContractError(f"{path}: input {PRIOR_INPUT_NAME} has shape {prior_dims}, expected {in_dims}")
        missing = [k for k in ("swapcam.prior", "swapcam.prior_reference_png", "swapcam.prior_reference_mesh")
                   if k not in metadata]
        if missing:
            raise ModelContractError(f"{path}: has input {PRIOR_INPUT_NAME} but no reference in its metadata ({missing})")
    if metadata.get("swapcam.resolution") and int(metadata["swapcam.resolution"]) != resolution:
        raise ModelContractError(f"{path}: metadata says resolution {metadata['swapcam.resolution']}, graph says {resolution}")
    try:
        scale = check_crop_scale(crop_scale if crop_scale is not None else merged.get("swapcam.crop_scale", 1.0))
    except ValueError as exc:
        source = "--crop-scale" if crop_scale is not None else "its metadata swapcam.crop_scale"
        raise ModelContractError(f"{path}: {source}: {exc}") from exc
    return ModelInfo(
        path=path,
        resolution=resolution,
        face_type=check_face_type(face_type or merged["swapcam.face_type"]),
        identity=merged.get("swapcam.identity", path.stem),
        has_morph_input=MORPH_INPUT_NAME in input_names,
        metadata=metadata,
        has_prior_input=has_prior,
        crop_scale=scale,
    )


def build_metadata(
    *,
    face_type: str,
    resolution: int,
    identity: str,
    architecture: str,
    training_steps: int,
    training_data: list[dict],
    consent: str,
    created: str,
    data_credits: str = "not stated",
    crop_scale: float = 1.0,
) -> dict[str, str]:
    """The metadata_props our exporter writes; every value a string."""
    from realtime.face.alignment import FACE_TYPES, TEMPLATE_33, check_crop_scale, check_face_type

    check_face_type(face_type)
    crop_scale = check_crop_scale(crop_scale)
    return {
        "swapcam.format_version": FORMAT_VERSION,
        "swapcam.face_type": face_type,
        "swapcam.coverage": str(FACE_TYPES[face_type][0]),
        "swapcam.crop_scale": repr(crop_scale),
        "swapcam.resolution": str(int(resolution)),
        "swapcam.channel_order": "BGR",
        "swapcam.layout": "NHWC",
        "swapcam.value_range": "0,1",
        "swapcam.landmark_template": json.dumps(TEMPLATE_33.round(6).tolist()),
        "swapcam.identity": identity,
        "swapcam.architecture": architecture,
        "swapcam.training_steps": str(int(training_steps)),
        "swapcam.training_data": json.dumps(training_data),
        "swapcam.consent": consent,
        "swapcam.data_credits": data_credits,
        "swapcam.created": created,
    }
