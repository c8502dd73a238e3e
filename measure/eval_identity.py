"""Identity embeddings for evaluation, from a recogniser the trainer never sees (dlib's ResNet).

dlib's 5-point shape predictor places the face from a box that OUR landmarks give (not dlib's
detector), then ``face_recognition_model_v1`` turns the 150x150 chip into a 128-d descriptor.
The weights ship in the ``face_recognition_models`` package; its ``__init__`` imports
``pkg_resources`` (gone from recent setuptools), so its files are found through importlib instead.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

SHAPE_PREDICTOR_FILE = "shape_predictor_5_face_landmarks.dat"
RECOGNISER_FILE = "dlib_face_recognition_resnet_model_v1.dat"


class IdentityModelError(RuntimeError):
    """dlib or its model files are missing."""


def dlib_model_dir() -> Path:
    """The folder holding face_recognition_models' weight files, found without importing it."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise IdentityModelError(
            "face_recognition_models is not installed; install it (pip install face-recognition-models) "
            "to score identity"
        )
    for location in spec.submodule_search_locations:
        folder = Path(location) / "models"
        if (folder / RECOGNISER_FILE).is_file() and (folder / SHAPE_PREDICTOR_FILE).is_file():
            return folder
    raise IdentityModelError(f"face_recognition_models has no {RECOGNISER_FILE} under {spec.submodule_search_locations}")


def landmark_box(landmarks68: np.ndarray) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 of the 68 landmarks: close to the box dlib's own detector draws
    (jaw width, brows to chin), which is what the 5-point predictor was trained on."""
    pts = np.asarray(landmarks68, np.float64)[:, :2]
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    return int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors."""
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def cosine_rows(rows: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """(N,) cosine similarity of each row of (N, D) ``rows`` to (D,) ``ref``."""
    rows = np.asarray(rows, np.float64)
    if rows.size == 0:
        return np.zeros(0)
    return rows @ ref / (np.linalg.norm(rows, axis=1) * np.linalg.norm(ref) + 1e-12)


class IdentityEncoder:
    """128-d dlib face descriptors of faces located by 68-point landmarks.

    embed(image_bgr, landmarks68) -> (128,) float32. One instance per thread (dlib objects are
    not shared across threads here).
    """

    def __init__(self, model_dir: Path | None = None) -> None:
        try:
            import dlib
        except ImportError as exc:  # pragma: no cover - dlib-bin is a declared dependency
            raise IdentityModelError("dlib is not installed; install dlib-bin to score identity") from exc
        folder = model_dir or dlib_model_dir()
        self._dlib = dlib
        self._shape = dlib.shape_predictor(str(folder / SHAPE_PREDICTOR_FILE))
        self._net = dlib.face_recognition_model_v1(str(folder / RECOGNISER_FILE))

    def embed(self, image_bgr: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
        """Descriptor of the face whose 68 landmarks (image pixels) are given."""
        rgb = np.ascontiguousarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
        shape = self._shape(rgb, self._dlib.rectangle(*landmark_box(landmarks68)))
        return np.asarray(self._net.compute_face_descriptor(rgb, shape), np.float32)


@dataclass(frozen=True)
class Identity:
    """A named identity: its per-face descriptors and their mean (the centroid)."""

    name: str
    embeddings: np.ndarray  # (N, 128)

    @property
    def centroid(self) -> np.ndarray:
        return self.embeddings.mean(0)


def faceset_identity(path: str | Path, encoder: IdentityEncoder, max_faces: int = 32, name: str | None = None) -> Identity:
    """Identity of a faceset: descriptors of up to ``max_faces`` of its faces (spread evenly over
    the manifest), located by the aligned landmarks stored in the manifest."""
    from training.faceset import Faceset, FacesetError

    faceset = Faceset.open(path)
    records = faceset.records
    if not records:
        raise FacesetError(f"{path}: faceset has no faces; cannot build an identity from it")
    picks = np.unique(np.linspace(0, len(records) - 1, min(max_faces, len(records))).round().astype(int))
    embs = [encoder.embed(faceset.load_image(records[i]), records[i].aligned_points()) for i in picks]
    return Identity(name or Path(path).name, np.stack(embs))


def top1(embeddings: np.ndarray, gallery: list[Identity]) -> list[str]:
    """For each descriptor, the name of the gallery identity whose centroid is most similar."""
    if len(embeddings) == 0:
        return []
    centroids = np.stack([g.centroid for g in gallery]).astype(np.float64)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True) + 1e-12
    e = np.asarray(embeddings, np.float64)
    e = e / (np.linalg.norm(e, axis=1, keepdims=True) + 1e-12)
    best = (e @ centroids.T).argmax(1)
    return [gallery[i].name for i in best]
