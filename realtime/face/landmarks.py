"""Face landmarks from MediaPipe FaceMesh (478 points with iris refinement).

``FaceLandmarker.detect(frame)`` returns one ``DetectedFace`` per face: mesh points in frame pixels,
a stable id across frames (video mode), the head pose in degrees and, for stills, a detection
confidence. A frame without a face gives an empty list, never an exception.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field

import cv2
import numpy as np

from realtime.face.alignment import mesh_to_68
from realtime.util.stderr_filter import drop_native_chatter

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's bundled glog (its absl logging: see stderr_filter)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Mesh vertices used for the head pose: outer eye corners, forehead top, chin.
_RIGHT_EYE_OUTER, _LEFT_EYE_OUTER, _FOREHEAD, _CHIN = 33, 263, 10, 152


@dataclass(frozen=True)
class DetectedFace:
    """One face in one frame.

    mesh: (478, 3) float32 — x, y in frame pixels; z relative depth in the same scale as x
    (smaller is closer to the camera). Pose angles in degrees: yaw > 0 when the face turns toward
    the image's right, pitch > 0 when it looks up, roll > 0 when the eye line tilts clockwise.
    confidence: BlazeFace detection score for stills; None in video mode, where MediaPipe's tracker
    has already rejected faces below its tracking threshold.
    """

    face_id: int
    mesh: np.ndarray
    yaw: float
    pitch: float
    roll: float
    confidence: float | None = None

    @property
    def points(self) -> np.ndarray:
        """(478, 2) mesh points in frame pixels."""
        return self.mesh[:, :2]

    @property
    def landmarks68(self) -> np.ndarray:
        """(68, 2) landmarks in the 68-point scheme, frame pixels."""
        return mesh_to_68(self.mesh[:, :2])

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """x0, y0, x1, y1 of the mesh in frame pixels."""
        (x0, y0), (x1, y1) = self.points.min(0), self.points.max(0)
        return float(x0), float(y0), float(x1), float(y1)

    @property
    def size(self) -> float:
        """Face size in pixels: the larger side of the mesh's box."""
        x0, y0, x1, y1 = self.bbox
        return max(x1 - x0, y1 - y0)


def head_pose(mesh: np.ndarray) -> tuple[float, float, float]:
    """Yaw, pitch, roll in degrees from 3D mesh points (see ``DetectedFace`` for signs)."""
    x_axis = mesh[_LEFT_EYE_OUTER] - mesh[_RIGHT_EYE_OUTER]
    y_axis = mesh[_CHIN] - mesh[_FOREHEAD]
    x_axis = x_axis / (np.linalg.norm(x_axis) + 1e-9)
    y_axis = y_axis - x_axis * float(y_axis @ x_axis)
    y_axis = y_axis / (np.linalg.norm(y_axis) + 1e-9)
    normal = -np.cross(x_axis, y_axis)  # points from the face toward the camera
    yaw = math.degrees(math.atan2(normal[0], -normal[2]))
    pitch = math.degrees(math.atan2(-normal[1], math.hypot(normal[0], normal[2])))
    roll = math.degrees(math.atan2(x_axis[1], x_axis[0]))
    return yaw, pitch, roll


def to_bgr(frame: np.ndarray) -> np.ndarray:
    """Return a 3-channel uint8 BGR view of a gray, BGR or BGRA uint8 frame, or raise ValueError."""
    if not isinstance(frame, np.ndarray) or frame.size == 0:
        raise ValueError("frame is empty or not an image array")
    if frame.dtype != np.uint8:
        raise ValueError(f"frame must be uint8 (8-bit image), got {frame.dtype}; convert it first")
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        return cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    raise ValueError(f"unsupported frame shape {frame.shape}; expected HxW, HxWx3 (BGR) or HxWx4 (BGRA)")


@dataclass
class _IdTracker:
    """Gives faces ids that stay the same across frames (nearest previous face centre)."""

    next_id: int = 0
    previous: dict[int, np.ndarray] = field(default_factory=dict)  # id -> (cx, cy, size)

    def assign(self, boxes: list[tuple[float, float, float, float]]) -> list[int]:
        current = [np.array([(x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0)]) for x0, y0, x1, y1 in boxes]
        pairs = sorted(
            (float(np.hypot(*(c[:2] - p[:2]))) / max(p[2], 1.0), i, pid)
            for i, c in enumerate(current)
            for pid, p in self.previous.items()
        )
        ids: dict[int, int] = {}
        for dist, i, pid in pairs:
            if dist < 0.5 and i not in ids and pid not in ids.values():
                ids[i] = pid
        for i in range(len(current)):
            if i not in ids:
                ids[i] = self.next_id
                self.next_id += 1
        self.previous = {ids[i]: c for i, c in enumerate(current)}
        return [ids[i] for i in range(len(current))]


class FaceLandmarker:
    """MediaPipe FaceMesh for video (tracking across frames) or stills.

    Frames larger than ``max_side`` are downscaled for the detector; landmarks are returned in the
    original frame's pixels.
    """

    def __init__(
        self,
        *,
        static_images: bool = False,
        max_faces: int = 1,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        max_side: int = 1920,
    ) -> None:
        import mediapipe as mp  # imported here: slow to import and only needed once a detector exists

        # mediapipe 0.10.14 calls a protobuf API that warns on every graph start; it is harmless
        warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype", category=UserWarning)

        if max_faces < 1:
            raise ValueError("max_faces must be at least 1")
        self.static_images = static_images
        self.max_side = max_side
        # MediaPipe prints its start-up chatter (W0000 ... inference_feedback_manager.cc, the XNNPACK
        # delegate) when a graph is made and when it first runs: both happen here, on a blank frame,
        # with that chatter (and only it) dropped from stderr.
        with drop_native_chatter():
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=static_images,
                max_num_faces=max_faces,
                refine_landmarks=True,
                min_detection_confidence=min_detection_confidence,
                min_tracking_confidence=min_tracking_confidence,
            )
            self._detector = (
                mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.2)
                if static_images
                else None
            )
            blank = np.zeros((64, 64, 3), np.uint8)
            self._mesh.process(blank)
            if self._detector is not None:
                self._detector.process(blank)
        self._ids = _IdTracker()

    def detect(self, frame: np.ndarray) -> list[DetectedFace]:
        """Landmarks of every face in a gray/BGR/BGRA uint8 frame; [] when there is none."""
        bgr = to_bgr(frame)
        h, w = bgr.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        small = cv2.resize(bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else bgr
        rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        result = self._mesh.process(rgb)
        if not result.multi_face_landmarks:
            if not self.static_images:
                self._ids.assign([])
            return []
        meshes = []
        for face in result.multi_face_landmarks:
            arr = np.array([(p.x, p.y, p.z) for p in face.landmark], np.float32)
            arr[:, 0] *= w
            arr[:, 1] *= h
            arr[:, 2] *= w
            meshes.append(arr)
        boxes = [(*m[:, :2].min(0), *m[:, :2].max(0)) for m in meshes]
        ids = list(range(len(meshes))) if self.static_images else self._ids.assign(boxes)
        scores = self._scores(rgb, boxes, (w, h)) if self._detector else [None] * len(meshes)
        faces = [DetectedFace(fid, m, *head_pose(m), confidence=s) for fid, m, s in zip(ids, meshes, scores)]
        return sorted(faces, key=lambda f: f.face_id)

    def _scores(self, rgb: np.ndarray, boxes: list, size: tuple[int, int]) -> list[float]:
        """BlazeFace score of the detection whose centre lies inside each mesh box (0 if none)."""
        w, h = size
        detections = self._detector.process(rgb).detections or []
        centres = []
        for det in detections:
            b = det.location_data.relative_bounding_box
            centres.append(((b.xmin + b.width / 2) * w, (b.ymin + b.height / 2) * h, float(det.score[0])))
        scores = []
        for x0, y0, x1, y1 in boxes:
            inside = [s for cx, cy, s in centres if x0 <= cx <= x1 and y0 <= cy <= y1]
            scores.append(max(inside, default=0.0))
        return scores

    def close(self) -> None:
        """Release MediaPipe's graphs."""
        self._mesh.close()
        if self._detector is not None:
            self._detector.close()

    def __enter__(self) -> FaceLandmarker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
