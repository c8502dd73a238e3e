"""The reference prior: the target's reference face warped onto a face's mesh (a prior model's second input).

A prior model (``training.model.ModelConfig.prior``) gets, beside the aligned face, the target
identity's reference face (one aligned crop chosen from its src faceset, carried inside the model
file's metadata) warped by the dense mesh warp (``realtime.swap.mesh_warp``, the one-photo swap's warp)
onto that face's 478-point mesh. Training (``training.prior``) and the live loop build it with this
one class, so what the model sees is the same in both.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import cv2
import numpy as np

from realtime.swap.mesh_warp import MeshWarp

# MediaPipe mesh vertices (facts of its canonical topology): inner-lip midpoints and outer eye corners.
_LIP_GAP = (13, 14)
_EYE_OUTER = (33, 263)


@dataclass(frozen=True)
class Reference:
    """The target's reference face: image (R, R, 3) BGR uint8 aligned crop, mesh (478, 2) aligned px."""

    image: np.ndarray
    mesh: np.ndarray
    source: str = ""

    def to_metadata(self) -> dict[str, str]:
        """ONNX metadata entries that carry the reference inside the model file (PNG + JSON)."""
        ok, png = cv2.imencode(".png", self.image)
        if not ok:
            raise ValueError("the reference image cannot be encoded as PNG")
        return {"swapcam.prior": "mesh_warp_v1",
                "swapcam.prior_reference_png": base64.b64encode(png.tobytes()).decode("ascii"),
                "swapcam.prior_reference_mesh": json.dumps(np.round(self.mesh, 2).tolist()),
                "swapcam.prior_reference_source": self.source}

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> Reference:
        """The reference stored by ``to_metadata`` (KeyError/ValueError when absent or corrupt)."""
        png = np.frombuffer(base64.b64decode(meta["swapcam.prior_reference_png"]), np.uint8)
        image = cv2.imdecode(png, cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError("the model's reference image cannot be decoded")
        mesh = np.asarray(json.loads(meta["swapcam.prior_reference_mesh"]), np.float32)
        return cls(image, mesh, meta.get("swapcam.prior_reference_source", ""))


def mouth_openness(mesh: np.ndarray) -> float:
    """Inner-lip gap over the outer-eye-corner distance (0 = lips closed)."""
    gap = float(np.linalg.norm(mesh[_LIP_GAP[0]] - mesh[_LIP_GAP[1]]))
    return gap / max(float(np.linalg.norm(mesh[_EYE_OUTER[0]] - mesh[_EYE_OUTER[1]])), 1e-6)


class ReferencePrior:
    """Warps one reference onto any mesh of the same topology, at ``size`` px (the model's resolution).

    Built once per reference (the warp's triangulation and barycentric table); ``__call__`` costs one
    sparse product and a few remaps.
    """

    def __init__(self, reference: Reference, size: int) -> None:
        scale = size / reference.image.shape[0]
        self.size = size
        self.image = (reference.image if scale == 1 else
                      cv2.resize(reference.image, (size, size), interpolation=cv2.INTER_AREA))
        self.warp = MeshWarp(reference.mesh * scale, size)

    def __call__(self, mesh: np.ndarray) -> np.ndarray:
        """(size, size, 3) uint8 BGR: the reference warped onto ``mesh`` ((478, 2) aligned px at ``size``)."""
        coords = self.warp.inverse_map(mesh)
        return cv2.remap(self.image, coords, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
