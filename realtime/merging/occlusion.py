"""What is in front of the face: the occlusion model, run on every face, and its mask for the merge.

``OcclusionModel`` is one small ONNX segmenter (our own, trained by ``swapcam occlusion-train``, shipped as
``models/occlusion.onnx``): aligned face crops in (uint8 BGR, its own face type and resolution, read from
its metadata), the probability that each pixel is an occluder out (hands, glasses and their lenses,
microphones, cups, phones, hair strands). Its session is made by ``realtime.swap.swapper.create_session``,
like every model's.

``OcclusionMasker`` is the live loop's ``occlusion`` stage: per face it cuts the model's crop (a resize of the
swapper's own crop where both use the same face type, else a warp of the frame), runs the model once for the
batch, thresholds, grows and feathers the mask, and hands back the KEEP mask in the swapper's aligned crop:
1 where the user's pixels must stay on top (the merge's ``keep`` input), 0 where the swap may paint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from realtime.face.alignment import align_matrix, check_face_type, compose, invert, warp_to_aligned

DEFAULT_OCCLUSION_MODEL = Path(__file__).resolve().parents[2] / "models" / "occlusion.onnx"
INPUT_NAME, OUTPUT_NAME = "face", "occlusion"
META_PREFIX = "swapcam.occlusion."


class OcclusionModelError(ValueError):
    """An occlusion model file that is missing or does not follow the occlusion model's contract."""


class OcclusionModel:
    """The occluder segmenter: ``get(crops)`` (N, R, R, 3) uint8 BGR aligned crops -> (N, R, R) float32 in [0, 1].

    Its face type, crop scale and resolution come from its metadata (``swapcam.occlusion.*``); ``metadata``
    holds all of it (training data, credits, steps, measured figures).
    """

    def __init__(self, path: str | Path | None = None, *, threads: int = 1, providers: list[str] | None = None) -> None:
        from realtime.swap.model_contract import ModelContractError
        from realtime.swap.swapper import create_session

        self.path = Path(path) if path is not None else DEFAULT_OCCLUSION_MODEL
        if not self.path.is_file():
            raise OcclusionModelError(f"occlusion model not found: {self.path} (it ships as models/occlusion.onnx; "
                                      "`swapcam occlusion-train` makes one; --occlusion off runs without)")
        try:
            self.session = create_session(self.path, providers, threads)
        except ModelContractError as exc:
            raise OcclusionModelError(str(exc)) from exc
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        inputs = {i.name: i for i in self.session.get_inputs()}
        if INPUT_NAME not in inputs or OUTPUT_NAME not in {o.name for o in self.session.get_outputs()}:
            raise OcclusionModelError(f"{self.path}: not an occlusion model (needs input {INPUT_NAME!r} and output "
                                      f"{OUTPUT_NAME!r}, has {sorted(inputs)})")
        try:
            self.resolution = int(self.metadata[META_PREFIX + "resolution"])
            self.face_type = check_face_type(self.metadata[META_PREFIX + "face_type"])
            self.crop_scale = float(self.metadata.get(META_PREFIX + "crop_scale", 1.0))
        except (KeyError, ValueError) as exc:
            raise OcclusionModelError(f"{self.path}: its metadata lacks or garbles {exc}") from exc

    @property
    def name(self) -> str:
        return self.path.name

    def describe(self) -> str:
        return (f"occlusion model {self.path.name} ({self.resolution} px {self.face_type}, "
                f"{self.metadata.get(META_PREFIX + 'parameters', '?')} parameters; trained on "
                f"{self.metadata.get(META_PREFIX + 'training_data', 'unknown data')})")

    def prepare(self, runs: int = 3) -> OcclusionModel:
        crops = np.full((1, self.resolution, self.resolution, 3), 128, np.uint8)
        for _ in range(runs):
            self.get(crops)
        return self

    def get(self, crops: np.ndarray) -> np.ndarray:
        from realtime.swap.swapper import aligned_batch

        crops = aligned_batch(crops, self.resolution, "occlusion crops")
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(crops)})[0]


@dataclass
class OcclusionSettings:
    """threshold: probability from which a pixel is an occluder; grow: pixels of the model's crop the mask
    grows by (so the occluder's own edge stays exactly the user's); feather: Gaussian radius (model crop
    pixels) of an extra soft edge outside the grown mask's core (0: the edge is the bilinear upsampling's, about
    one model pixel). Chosen on GRID s4 (a training identity, never an eval user) with the eval's occluders:
    grow 1 / feather 0 kept 92-100 % of every kind with the unoccluded face changed 0.80-1.05 of the full swap,
    where feather 1 cost up to 0.09 of that ratio and grow 0 lost up to 0.08 of thin frames and hair."""

    threshold: float = 0.5
    grow: int = 1
    feather: int = 0


class OcclusionMasker:
    """Keep masks for the merge, one per face, in the swapper's aligned crop (see the module docstring)."""

    def __init__(self, model: OcclusionModel, settings: OcclusionSettings | None = None) -> None:
        self.model = model
        self.settings = settings or OcclusionSettings()
        s = self.settings
        self._grow = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * s.grow + 1,) * 2) if s.grow > 0 else None
        self._crops = np.empty((0, model.resolution, model.resolution, 3), np.uint8)
        self.last_probability: np.ndarray | None = None  # (N, R, R) of the last call, for inspection

    def describe(self) -> str:
        return self.model.describe()

    def _same_crop(self, face_type: str, crop_scale: float) -> bool:
        return face_type == self.model.face_type and abs(crop_scale - self.model.crop_scale) < 1e-6

    def keep_masks(self, image: np.ndarray, landmarks68: list[np.ndarray], swap_crops: np.ndarray,
                   swap_matrices: list[np.ndarray], face_type: str, crop_scale: float) -> list[np.ndarray]:
        """Per face: (r, r) float32 keep mask in [0, 1] in the swapper's crop (r = ``swap_crops``' side).

        image: the frame (BGR uint8); landmarks68: per face, frame pixels; swap_crops: (N, r, r, 3) the
        swapper's aligned crops; swap_matrices: their frame -> crop matrices, of ``face_type``/``crop_scale``.
        """
        n, r = len(landmarks68), swap_crops.shape[1]
        q = self.model.resolution
        if self._crops.shape[0] < n:
            self._crops = np.empty((n, q, q, 3), np.uint8)
        crops = self._crops[:n]
        same = self._same_crop(face_type, crop_scale)
        to_swap = []
        for i in range(n):
            if same:  # one resize of the swapper's crop: no second warp of the frame, area-averaged
                crops[i] = cv2.resize(swap_crops[i], (q, q), interpolation=cv2.INTER_AREA)
                to_swap.append(None)
            else:
                m = align_matrix(landmarks68[i], q, self.model.face_type, self.model.crop_scale)
                crops[i] = warp_to_aligned(image, m, q)
                to_swap.append(compose(swap_matrices[i], invert(m)))
        prob = self.model.get(crops)
        self.last_probability = prob
        s = self.settings
        masks = []
        for i in range(n):
            keep = (prob[i] >= s.threshold).astype(np.float32)
            if self._grow is not None:
                keep = cv2.dilate(keep, self._grow)
            if s.feather > 0:
                keep = cv2.GaussianBlur(keep, (2 * s.feather + 1,) * 2, 0)
                # the blur's inner half goes back to 1: the grown core stays fully the user's
                np.minimum(keep * 2.0, 1.0, out=keep)
            if to_swap[i] is None:
                masks.append(cv2.resize(keep, (r, r), interpolation=cv2.INTER_LINEAR))
            else:
                masks.append(cv2.warpAffine(keep, to_swap[i], (r, r), flags=cv2.INTER_LINEAR,
                                            borderMode=cv2.BORDER_CONSTANT, borderValue=0))
        return masks


def open_occlusion(path: str | Path | None = None, *, threads: int = 1,
                   settings: OcclusionSettings | None = None) -> OcclusionMasker:
    """The live loop's occlusion stage with the model at ``path`` (default: the shipped one), warmed up."""
    return OcclusionMasker(OcclusionModel(path, threads=threads).prepare(), settings)
