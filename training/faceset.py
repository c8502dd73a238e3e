"""The faceset (DESIGN.md contract 3): a folder of aligned face images plus one manifest.

``FACESET/faceset.jsonl``: the first line is a header (format version, resolution, face type); each
further line is one face (its image file, source file and frame, face index, 68 landmarks in source
and aligned pixels, the 2x3 source->aligned matrix, face type, sharpness, pose). Human-readable and
diffable; deleting an image file removes that face.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from realtime.util.atomic_files import write_image, write_text

MANIFEST_NAME = "faceset.jsonl"
FORMAT = "swapcam-faceset"
FORMAT_VERSION = 1


class FacesetError(ValueError):
    """A folder that is not a faceset, or a faceset that does not fit what was asked of it."""


@dataclass(frozen=True)
class FaceRecord:
    """One aligned face of a faceset (one manifest line)."""

    file: str
    source: str
    frame: int
    face_index: int
    landmarks: list  # 68 x [x, y], source pixels
    aligned_landmarks: list  # 68 x [x, y], aligned pixels
    matrix: list  # 2 x 3, source -> aligned
    face_type: str
    sharpness: float
    yaw: float
    pitch: float
    roll: float
    face_size: float
    confidence: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> FaceRecord:
        return cls(**json.loads(line))

    def aligned_points(self) -> np.ndarray:
        """(68, 2) float32 landmarks in aligned pixels."""
        return np.asarray(self.aligned_landmarks, np.float32)


@dataclass(frozen=True)
class FacesetHeader:
    """The manifest's first line."""

    resolution: int
    face_type: str
    format: str = FORMAT
    crop_scale: float = 1.0  # crop side over DeepFaceLab's crop of face_type (manifests before it: 1)
    version: int = FORMAT_VERSION


def round_points(points: np.ndarray, decimals: int = 2) -> list:
    """Points as a JSON-friendly nested list, rounded so the manifest stays readable."""
    return np.round(np.asarray(points, np.float64), decimals).tolist()


class Faceset:
    """A faceset folder: open an existing one or create a new one, read faces, append faces."""

    def __init__(self, path: Path, header: FacesetHeader, records: list[FaceRecord]) -> None:
        self.path = path
        self.header = header
        self._records = records

    @property
    def manifest(self) -> Path:
        return self.path / MANIFEST_NAME

    @property
    def resolution(self) -> int:
        return self.header.resolution

    @property
    def face_type(self) -> str:
        return self.header.face_type

    @property
    def crop_scale(self) -> float:
        return self.header.crop_scale

    @staticmethod
    def is_faceset(path: str | Path) -> bool:
        return (Path(path) / MANIFEST_NAME).is_file()

    @classmethod
    def open(cls, path: str | Path) -> Faceset:
        """Read a faceset; faces whose image file was deleted are left out."""
        path = Path(path)
        manifest = path / MANIFEST_NAME
        if not manifest.is_file():
            raise FacesetError(f"{path} is not a faceset: no {MANIFEST_NAME} (make one with `swapcam extract ... --out {path}`)")
        lines = [ln for ln in manifest.read_text(encoding="utf-8").splitlines() if ln.strip()]
        try:
            head = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError as exc:
            raise FacesetError(f"{manifest}: first line is not JSON ({exc})") from exc
        if head.get("format") != FORMAT:
            raise FacesetError(f"{manifest}: not a swapcam faceset manifest (no header line with format={FORMAT!r})")
        header = FacesetHeader(**head)
        records = []
        for number, line in enumerate(lines[1:], start=2):
            try:
                rec = FaceRecord.from_json(line)
            except (json.JSONDecodeError, TypeError) as exc:
                raise FacesetError(f"{manifest}:{number}: unreadable face record ({exc})") from exc
            if (path / rec.file).is_file():
                records.append(rec)
        return cls(path, header, records)

    @classmethod
    def create(cls, path: str | Path, resolution: int, face_type: str, crop_scale: float = 1.0) -> Faceset:
        """Open ``path`` for appending, creating it if needed.

        Refuses a non-empty folder that is not a faceset, and a faceset of another resolution or
        face type, rather than mixing or overwriting.
        """
        path = Path(path)
        if cls.is_faceset(path):
            fs = cls.open(path)
            if (fs.resolution, fs.face_type, fs.crop_scale) != (resolution, face_type, crop_scale):
                raise FacesetError(
                    f"{path} holds {fs.face_type} faces at {fs.resolution} px, crop scale {fs.crop_scale:g}; asked for "
                    f"{face_type} at {resolution} px, crop scale {crop_scale:g} — choose another --out folder or the "
                    "same settings"
                )
            return fs
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise FacesetError(f"{path} exists and is not a faceset; refusing to write into it (choose an empty or new folder)")
        path.mkdir(parents=True, exist_ok=True)
        header = FacesetHeader(resolution=resolution, face_type=face_type, crop_scale=crop_scale)
        with open(path / MANIFEST_NAME, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(header)) + "\n")
        return cls(path, header, [])

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[FaceRecord]:
        return iter(self._records)

    @property
    def records(self) -> list[FaceRecord]:
        return list(self._records)

    def load_image(self, record: FaceRecord) -> np.ndarray:
        """The aligned face of ``record`` as a BGR uint8 array of the faceset's resolution."""
        img = cv2.imread(str(self.path / record.file), cv2.IMREAD_COLOR)
        if img is None:
            raise FacesetError(f"{self.path / record.file}: unreadable image")
        return img

    def append(self, record: FaceRecord, image: np.ndarray) -> None:
        """Write the face's image (atomically) and then its manifest line."""
        if image.shape[:2] != (self.resolution, self.resolution):
            raise FacesetError(f"face image is {image.shape[:2]}, faceset resolution is {self.resolution}")
        try:
            write_image(self.path / record.file, image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        except OSError as exc:
            raise FacesetError(str(exc)) from exc
        with open(self.manifest, "a", encoding="utf-8") as fh:
            fh.write(record.to_json() + "\n")
        self._records.append(record)

    def rewrite(self, keep: list[FaceRecord]) -> None:
        """Replace the manifest with ``keep`` (atomically) and delete the images of dropped faces."""
        kept = {r.file for r in keep}
        lines = [json.dumps(asdict(self.header))] + [r.to_json() for r in keep]
        write_text(self.manifest, "\n".join(lines) + "\n")
        for rec in self._records:
            if rec.file not in kept:
                (self.path / rec.file).unlink(missing_ok=True)
        self._records = list(keep)
