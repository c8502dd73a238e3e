"""One factory for everything ``--model`` can name: ``open_swapper(path, **options)``.

- ``.onnx`` / ``.dfm``: a trained model (contract 1), run by ``realtime.swap.swapper.FaceSwapper``;
- a photo, a folder of photos or a short video of the target: ``realtime.swap.photo_swapper.PhotoSwapper``
  (the one-photo swap, no training).

Every swapper it returns has ``name``, ``path``, ``identity`` (str or None), ``consent`` (str or None),
``resolution``, ``face_type``, ``describe()``, ``prepare()`` and ``get()``. Options that do not apply to
the kind opened are ignored (e.g. ``providers`` for a photo), so one set of command-line options serves
a list of mixed models.
"""

from __future__ import annotations

from pathlib import Path

from realtime.swap.model_contract import ModelContractError
from realtime.swap.reference import reference_kind
from realtime.swap.swapper import FaceSwapper

MODEL_SUFFIXES = (".onnx", ".dfm")
_MODEL_OPTIONS = ("face_type", "crop_scale", "providers", "morph_value", "threads")
_PHOTO_OPTIONS = ("face_type", "resolution", "forehead", "grow", "shading", "proportions", "tone", "mouth",
                  "band", "landmarker", "identity", "consent")


def swapper_kind(path: str | Path) -> str:
    """'model' for .onnx/.dfm, 'photo' for an image, a folder or a video; ModelContractError otherwise."""
    p = Path(path)
    if p.suffix.lower() in MODEL_SUFFIXES:
        return "model"
    if reference_kind(p) is not None:
        return "photo"
    if not p.exists():
        raise ModelContractError(f"model file not found: {p}")
    raise ModelContractError(f"{p} is neither a model (.onnx, .dfm) nor a photo, folder of photos or video of the "
                             "target (for the one-photo swap)")


def open_swapper(path: str | Path, **options):
    """The swapper for ``path`` (see the module docstring); not yet prepared.

    Model options: face_type, crop_scale, providers, morph_value, threads. Photo options: face_type, resolution,
    forehead, grow, shading, proportions, tone, mouth, band, landmarker, identity, consent. ``None`` values mean "the default". Raises
    ModelContractError or ReferenceError (both ValueError) with a one-line reason.
    """
    kind = swapper_kind(path)
    wanted = _MODEL_OPTIONS if kind == "model" else _PHOTO_OPTIONS
    unknown = set(options) - set(_MODEL_OPTIONS) - set(_PHOTO_OPTIONS)
    if unknown:
        raise TypeError(f"open_swapper: unknown options {sorted(unknown)}")
    chosen = {k: v for k, v in options.items() if k in wanted and v is not None}
    if kind == "model":
        return FaceSwapper(path, **chosen)
    from realtime.swap.photo_swapper import PhotoSwapper

    return PhotoSwapper(path, **chosen)
