"""The target's reference face for the one-photo swap: from a photo, a folder of photos or a short video.

``load_reference(path)`` finds every usable face and picks the best reference: frontal, neutral,
mouth closed, eyes open, sharp, large. It returns a ``Reference`` that says which face it chose and
why. Bad input raises ``ReferenceError`` (a ValueError) with a one-line reason: an unreadable file,
a grey image, transparency over the face, no face, two faces, a tiny or turned face. In a folder or
video such frames are skipped (and counted); only when none is usable is that an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from realtime.face.regions import eye_openness, mouth_openness
from realtime.frames.sources import IMAGE_SUFFIXES
from realtime.util.media_files import ImageFileError, read_image_file, video_problem

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
MIN_FACE_PX = 64  # mesh box side: below this there is too little face to show
MAX_TURN_DEG = 30.0  # |yaw| or |pitch| beyond this is no usable reference
MAX_VIDEO_CANDIDATES = 60  # frames of a video looked at (evenly spaced)
MAX_VIDEO_FRAMES = 9000  # frames decoded at most (6 minutes at 25 fps): a reference clip is short


class ReferenceError(ValueError):
    """A photo, folder or video that gives no usable reference face (the message says why)."""


@dataclass
class Candidate:
    """One usable face: where it came from and what it looks like."""

    label: str  # e.g. "photo.jpg" or "clip.mp4 frame 120"
    image: np.ndarray  # BGR uint8, the whole photo or frame
    mesh: np.ndarray  # (478, 3) float32, frame pixels
    yaw: float
    pitch: float
    roll: float
    size: float  # mesh box side in pixels
    mouth_open: float  # inner-lip gap / mouth width
    eyes_open: float  # eyelid gap / eye width
    smile: float  # mouth width / outer-eye-corner distance
    sharpness: float  # variance of the Laplacian of the face at a fixed scale

    @property
    def points(self) -> np.ndarray:
        return self.mesh[:, :2]


@dataclass
class Reference:
    """The chosen reference face and the story of the choice."""

    path: Path
    chosen: Candidate
    considered: int  # usable faces compared
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count, for folders and videos
    why: str = ""
    identity: str | None = None  # from a sidecar JSON beside the photo, if any
    consent: str | None = None
    credit: str | None = None

    @property
    def image(self) -> np.ndarray:
        return self.chosen.image

    @property
    def mesh(self) -> np.ndarray:
        return self.chosen.mesh


def read_image(path: Path) -> np.ndarray:
    """A colour photo as BGR uint8, upright by its EXIF orientation, or ReferenceError (unreadable, truncated,
    grey, transparent)."""
    try:
        raw = read_image_file(path, cv2.IMREAD_UNCHANGED)  # as stored: alpha and bit depth kept, no EXIF turn
    except ImageFileError as exc:
        raise ReferenceError(str(exc)) from exc
    if raw.dtype == np.uint16:
        raw = (raw // 257).astype(np.uint8)
    if raw.dtype != np.uint8:
        raise ReferenceError(f"{path} has {raw.dtype} pixels; save it as an 8-bit colour photo")
    if raw.ndim == 2 or raw.shape[2] == 1:
        raise ReferenceError(f"{path} is a greyscale image; the one-photo swap needs a colour photo of the target")
    if raw.shape[2] == 4:
        alpha = raw[:, :, 3]
        if (alpha < 255).any():
            transparent = float((alpha < 128).mean())
            raise ReferenceError(f"{path} has transparent pixels ({transparent:.0%} of it); flatten it onto an "
                                 "opaque background (the swap needs every face pixel)")
        raw = raw[:, :, :3]
    elif raw.dtype == np.uint8 and raw.shape[2] == 3:
        raw = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR)  # the same pixels, EXIF-upright
    image = np.ascontiguousarray(raw)
    b, g, r = (image[:, :, i].astype(np.int16) for i in range(3))
    if max(np.abs(b - g).mean(), np.abs(g - r).mean()) < 1.0:
        raise ReferenceError(f"{path} is a greyscale image stored as colour; the one-photo swap needs a colour photo")
    return image


def _sharpness(image: np.ndarray, points: np.ndarray) -> float:
    """Variance of the Laplacian inside the face, after scaling the face to 100 px between the outer eye corners."""
    iod = float(np.linalg.norm(points[33] - points[263]))
    scale = 100.0 / max(iod, 1.0)
    x0, y0 = points.min(0)
    x1, y1 = points.max(0)
    crop = image[max(0, int(y0)):int(np.ceil(y1)), max(0, int(x0)):int(np.ceil(x1))]
    if crop.size == 0:
        return 0.0
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def _candidate(label: str, image: np.ndarray, face) -> Candidate:
    pts = face.points
    iod = float(np.linalg.norm(pts[33] - pts[263]))
    return Candidate(label=label, image=image, mesh=np.asarray(face.mesh, np.float32), yaw=face.yaw, pitch=face.pitch,
                     roll=face.roll, size=float(face.size), mouth_open=mouth_openness(pts), eyes_open=eye_openness(pts),
                     smile=float(np.linalg.norm(pts[61] - pts[291]) / max(iod, 1e-6)), sharpness=_sharpness(image, pts))


def _check_face(label: str, faces: list) -> tuple[object | None, str | None]:
    """The one face of a photo, or (None, reason it is unusable)."""
    if not faces:
        return None, "no face found"
    if len(faces) > 1:
        return None, f"{len(faces)} faces (a reference must show one person)"
    face = faces[0]
    if face.size < MIN_FACE_PX:
        return None, f"face only {face.size:.0f} px (at least {MIN_FACE_PX} px needed, 200+ is best)"
    if abs(face.yaw) > MAX_TURN_DEG or abs(face.pitch) > MAX_TURN_DEG:
        return None, (f"face turned too far (yaw {face.yaw:.0f} deg, pitch {face.pitch:.0f} deg; "
                      f"at most {MAX_TURN_DEG:.0f})")
    return face, None


def _costs(candidates: list[Candidate]) -> np.ndarray:
    """Lower is better: turn (per 10 deg), open mouth, smile (vs the most neutral), closed eyes,
    blur (vs the sharpest) and small size (vs the largest), each scaled to about 1 for a clear flaw."""
    sharpest = max(c.sharpness for c in candidates) or 1.0
    largest = max(c.size for c in candidates)
    neutral = min(c.smile for c in candidates)
    costs = []
    for c in candidates:
        cost = (abs(c.yaw) + abs(c.pitch) + 0.3 * abs(c.roll)) / 10.0
        cost += c.mouth_open / 0.05
        cost += (c.smile - neutral) / max(neutral, 1e-6) / 0.08
        cost += max(0.0, 0.2 - c.eyes_open) / 0.05
        cost += (1.0 - c.sharpness / sharpest) / 0.3
        cost += (1.0 - c.size / largest) / 0.5
        costs.append(cost)
    return np.asarray(costs)


def _why(c: Candidate, considered: int) -> str:
    mouth = "mouth closed" if c.mouth_open < 0.03 else f"mouth open {c.mouth_open:.2f} of its width"
    eyes = "eyes open" if c.eyes_open >= 0.15 else "eyes half closed"
    parts = [f"yaw {c.yaw:+.0f} deg, pitch {c.pitch:+.0f} deg", mouth, eyes, f"mouth width {c.smile:.2f} eye spans",
             f"face {c.size:.0f} px"]
    if considered > 1:
        parts.append(f"the best of {considered} usable faces on pose, open mouth, smile, eyes, sharpness and size")
    return "; ".join(parts)


def sidecar_record(path: Path) -> dict:
    """identity / consent / credit from ``PHOTO.json`` beside a file, or ``reference.json`` in a folder."""
    side = path / "reference.json" if path.is_dir() else path.with_suffix(".json")
    if not side.is_file():
        return {}
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReferenceError(f"{side}: not readable JSON ({exc})") from exc
    return {k: str(data[k]) for k in ("identity", "consent", "credit") if data.get(k)}


def _images(paths: list[Path], landmarker, skipped: dict[str, int]) -> list[Candidate]:
    out = []
    for p in paths:
        try:
            image = read_image(p)
        except ReferenceError as exc:
            if len(paths) == 1:
                raise
            reason = str(exc).split(";")[0].replace(str(p), "").strip() or "unreadable"
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        face, reason = _check_face(p.name, landmarker.detect(image))
        if face is None:
            if len(paths) == 1:
                raise ReferenceError(f"{p}: {reason}")
            skipped[reason.split(" (")[0]] = skipped.get(reason.split(" (")[0], 0) + 1
            continue
        out.append(_candidate(p.name, image, face))
    return out


def _video(path: Path, landmarker, skipped: dict[str, int]) -> list[Candidate]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise ReferenceError(video_problem(path))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    every = max(1, min(total or MAX_VIDEO_FRAMES, MAX_VIDEO_FRAMES) // MAX_VIDEO_CANDIDATES)
    out = []
    index = 0
    try:
        while index < MAX_VIDEO_FRAMES:
            ok = cap.grab()
            if not ok:
                break
            if index % every == 0:
                ok, frame = cap.retrieve()
                if ok and frame is not None:
                    face, reason = _check_face(f"frame {index}", landmarker.detect(frame))
                    if face is None:
                        key = reason.split(" (")[0]
                        skipped[key] = skipped.get(key, 0) + 1
                    else:
                        out.append(_candidate(f"{path.name} frame {index}", frame, face))
            index += 1
    finally:
        cap.release()
    if index == 0:
        raise ReferenceError(f"{path} has no readable frames")
    return out


def reference_kind(path: str | Path) -> str | None:
    """'image', 'folder' or 'video' when ``path`` looks like a reference for the one-photo swap, else None."""
    p = Path(path)
    if p.is_dir():
        return "folder"
    suffix = p.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    return None


def load_reference(path: str | Path, landmarker=None) -> Reference:
    """The best reference face in a photo, a folder of photos or a video (see the module docstring)."""
    path = Path(path)
    kind = reference_kind(path)
    if kind is None:
        raise ReferenceError(f"{path} is not a photo ({', '.join(IMAGE_SUFFIXES)}), a folder of photos or a video")
    if not path.exists():
        raise ReferenceError(f"photo not found: {path}")
    own = landmarker is None
    if own:
        from realtime.face.landmarks import FaceLandmarker

        landmarker = FaceLandmarker(static_images=True, max_faces=2)
    skipped: dict[str, int] = {}
    try:
        if kind == "image":
            candidates = _images([path], landmarker, skipped)
        elif kind == "folder":
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise ReferenceError(f"no photos ({', '.join(IMAGE_SUFFIXES)}) in folder {path}")
            candidates = _images(files, landmarker, skipped)
        else:
            candidates = _video(path, landmarker, skipped)
    finally:
        if own:
            landmarker.close()
    if not candidates:
        reasons = ", ".join(f"{n} x {r}" for r, n in skipped.items()) or "nothing readable"
        raise ReferenceError(f"no usable reference face in {path} ({reasons})")
    best = int(np.argmin(_costs(candidates)))
    chosen = candidates[best]
    return Reference(path=path, chosen=chosen, considered=len(candidates), skipped=skipped,
                     why=_why(chosen, len(candidates)), **sidecar_record(path))


def describe_reference(ref: Reference) -> str:
    """One line: which face was chosen and why (plus what was skipped)."""
    text = f"reference {ref.chosen.label}: {ref.why}"
    if ref.skipped:
        text += "; skipped " + ", ".join(f"{n} ({r})" for r, n in ref.skipped.items())
    return text
