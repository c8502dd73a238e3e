"""Extraction: videos, image folders and images -> an aligned faceset (DESIGN.md contract 3).

``extract(inputs, out, options)`` finds faces with ``realtime.face.landmarks.FaceLandmarker`` (video
mode, i.e. tracking, for videos; static mode for stills), aligns each with
``realtime.face.alignment.align_face`` (the one alignment path live swapping uses too), measures its
sharpness and pose, and appends it to the faceset. Re-running resumes: frames already in the
manifest (even ones whose image a person deleted) and frames recorded in the sidecar state file as
seen-without-a-kept-face are skipped. Returns an ``ExtractSummary``.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from realtime.face.alignment import align_face, check_crop_scale, check_face_type
from realtime.util.atomic_files import write_text
from realtime.util.media_files import ImageFileError, read_image_file, video_problem
from realtime.face.landmarks import DetectedFace, FaceLandmarker
from training.faceset import MANIFEST_NAME, FaceRecord, Faceset, round_points
from training.quality import sharpness

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
STATE_NAME = "extract_state.json"


@dataclass(frozen=True)
class ExtractOptions:
    """What to extract. Sizes are pixels; ``min_face_size`` is measured in the source frame."""

    face_type: str = "whole_face"
    size: int = 256
    every_nth: int = 1
    max_frames: int | None = None  # per video: stop after this many frames (None: the whole video)
    min_face_size: float = 0.0
    max_faces: int = 1
    min_sharpness: float = 0.0
    progress: bool = True
    crop_scale: float = 1.0  # crop side over DeepFaceLab's crop of face_type

    def __post_init__(self) -> None:
        check_face_type(self.face_type)
        check_crop_scale(self.crop_scale)
        if self.size < 16:
            raise ValueError(f"size must be at least 16 px, got {self.size}")
        if self.every_nth < 1:
            raise ValueError(f"every_nth must be at least 1, got {self.every_nth}")
        if self.max_faces < 1:
            raise ValueError(f"max_faces must be at least 1, got {self.max_faces}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames must be at least 1, got {self.max_frames}")


@dataclass
class ExtractSummary:
    """What one extraction run did."""

    frames_read: int = 0  # frames/images decoded and searched for faces in this run
    frames_with_face: int = 0
    frames_without_face: int = 0
    frames_resumed: int = 0  # frames/images skipped because an earlier run already did them
    faces_written: int = 0
    faces_dropped: dict[str, int] = field(default_factory=dict)  # reason -> count
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why): not extracted, not an error
    errors: list[tuple[str, str]] = field(default_factory=list)  # (file, why): the run exits non-zero
    seconds: float = 0.0

    @property
    def detection_rate(self) -> float:
        """Share of the frames read in which at least one face was found."""
        return self.frames_with_face / self.frames_read if self.frames_read else 0.0

    @property
    def frames_per_second(self) -> float:
        return self.frames_read / self.seconds if self.seconds > 0 else 0.0

    def drop(self, reason: str, n: int = 1) -> None:
        self.faces_dropped[reason] = self.faces_dropped.get(reason, 0) + n

    def format(self) -> str:
        lines = [
            f"frames read:          {self.frames_read} in {self.seconds:.1f} s ({self.frames_per_second:.1f} frames/s)",
            f"frames with a face:   {self.frames_with_face} ({100 * self.detection_rate:.2f}%)",
            f"frames without face:  {self.frames_without_face}",
            f"frames resumed:       {self.frames_resumed} (done by an earlier run, skipped)",
            f"faces written:        {self.faces_written}",
        ]
        lines += [f"faces dropped:        {n} ({why})" for why, n in self.faces_dropped.items()]
        lines += [f"skipped {path}: {why}" for path, why in self.skipped]
        lines += [f"ERROR {path}: {why}" for path, why in self.errors]
        return "\n".join(lines)


class ExtractState:
    """The sidecar ``extract_state.json``: frames seen without a kept face, and videos finished.

    Written atomically; lets a re-run skip frames that are not in the manifest for a reason
    (no face, face too small/blurry, dropped as a duplicate) without searching them again.
    """

    def __init__(self, faceset_path: Path) -> None:
        self.path = faceset_path / STATE_NAME
        data = json.loads(self.path.read_text(encoding="utf-8")) if self.path.is_file() else {}
        self.seen: dict[str, set[int]] = {k: set(v) for k, v in data.get("seen", {}).items()}
        self.finished: dict[str, dict] = data.get("finished", {})

    def mark(self, source: str, frame: int) -> None:
        self.seen.setdefault(source, set()).add(frame)

    def save(self) -> None:
        data = {"seen": {k: sorted(v) for k, v in self.seen.items()}, "finished": self.finished}
        write_text(self.path, json.dumps(data, separators=(",", ":")))


def manifest_frames(faceset_path: Path) -> dict[str, set[int]]:
    """source -> frames present in the manifest, including faces whose image was deleted by a person
    (deleting an image removes that face; a re-run must not bring it back)."""
    done: dict[str, set[int]] = {}
    lines = (faceset_path / MANIFEST_NAME).read_text(encoding="utf-8").splitlines()
    for line in lines[1:]:
        if line.strip():
            rec = json.loads(line)
            done.setdefault(rec["source"], set()).add(int(rec["frame"]))
    return done


def _file_key(source: str) -> str:
    """A short file-name-safe tag of the source: its stem plus a hash of its full path (stems repeat)."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(source).stem)[:40] or "src"
    return f"{stem}-{hashlib.sha1(source.encode()).hexdigest()[:6]}"


def collect_inputs(inputs: list[str | Path], summary: ExtractSummary, out: Path | None = None) -> list[tuple[str, Path]]:
    """Expand INPUTs into ("video" | "image" | "folder-image", path) jobs; missing paths (and the
    output faceset itself) become errors."""
    jobs: list[tuple[str, Path]] = []
    for item in map(Path, inputs):
        if out is not None and item.resolve() == out.resolve():
            summary.errors.append((str(item), "this is the --out faceset itself; pass the source videos/photos"))
        elif item.is_dir():
            for child in sorted(item.iterdir()):
                if child.is_file() and child.suffix.lower() in IMAGE_EXTENSIONS:
                    jobs.append(("folder-image", child))
                elif child.is_file() and child.name not in (MANIFEST_NAME, STATE_NAME):
                    summary.skipped.append((str(child), "not an image file (pass videos by name, not inside a folder)"))
        elif item.is_file():
            jobs.append(("image" if item.suffix.lower() in IMAGE_EXTENSIONS else "video", item))
        else:
            summary.errors.append((str(item), "no such file or folder"))
    return jobs


class _Extractor:
    """One extraction run: the faceset, the options, the resume state and the summary."""

    def __init__(self, faceset: Faceset, options: ExtractOptions, summary: ExtractSummary) -> None:
        self.fs = faceset
        self.opt = options
        self.summary = summary
        self.state = ExtractState(faceset.path)
        self.done = manifest_frames(faceset.path)
        for source, frames in self.state.seen.items():
            self.done.setdefault(source, set()).update(frames)

    def is_done(self, source: str, frame: int) -> bool:
        return frame in self.done.get(source, ())

    def add_faces(self, source: str, frame_index: int, frame: np.ndarray, faces: list[DetectedFace]) -> None:
        """Align, measure and append the faces of one frame (largest ``max_faces`` of them)."""
        self.summary.frames_read += 1
        if not faces:
            self.summary.frames_without_face += 1
            self.state.mark(source, frame_index)
            return
        self.summary.frames_with_face += 1
        faces = sorted(faces, key=lambda f: -f.size)[: self.opt.max_faces]
        written = 0
        for index, face in enumerate(sorted(faces, key=lambda f: f.face_id)):
            if face.size < self.opt.min_face_size:
                self.summary.drop(f"smaller than --min-face-size {self.opt.min_face_size:g} px")
                continue
            aligned = align_face(frame, face.landmarks68, self.opt.size, self.opt.face_type, self.opt.crop_scale)
            sharp = sharpness(aligned.image, aligned.aligned_landmarks68)
            if sharp < self.opt.min_sharpness:
                self.summary.drop(f"blurrier than --min-sharpness {self.opt.min_sharpness:g}")
                continue
            record = FaceRecord(
                file=f"{_file_key(source)}_{frame_index:06d}_{index}.jpg",
                source=source,
                frame=frame_index,
                face_index=index,
                landmarks=round_points(aligned.landmarks68),
                aligned_landmarks=round_points(aligned.aligned_landmarks68),
                matrix=np.round(aligned.matrix, 6).tolist(),
                face_type=self.opt.face_type,
                sharpness=round(sharp, 2),
                yaw=round(face.yaw, 2),
                pitch=round(face.pitch, 2),
                roll=round(face.roll, 2),
                face_size=round(face.size, 2),
                confidence=None if face.confidence is None else round(face.confidence, 4),
            )
            self.fs.append(record, aligned.image)
            written += 1
        self.summary.faces_written += written
        if not written:
            self.state.mark(source, frame_index)

    def video(self, path: Path) -> None:
        """Extract from one video in tracking mode; a file that cannot be decoded becomes an error."""
        source = str(path.resolve())
        stat = path.stat()
        run_key = {"size": stat.st_size, "every_nth": self.opt.every_nth, "max_frames": self.opt.max_frames}
        if self.state.finished.get(source) == run_key:
            self.summary.skipped.append((str(path), "already extracted by an earlier run with these settings"))
            return
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            self.summary.errors.append((str(path), video_problem(path)))
            return
        expected = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        total = min(expected, self.opt.max_frames) if self.opt.max_frames and expected > 0 else (self.opt.max_frames or expected or None)
        decoded = 0
        bar = tqdm(total=total, desc=path.name, unit="frame", disable=not self.opt.progress, dynamic_ncols=True)
        try:
            with FaceLandmarker(static_images=False, max_faces=self.opt.max_faces) as lm:
                while self.opt.max_frames is None or decoded < self.opt.max_frames:
                    index = decoded
                    wanted = index % self.opt.every_nth == 0 and not self.is_done(source, index)
                    ok, frame = cap.read() if wanted else (cap.grab(), None)
                    if not ok:
                        break
                    decoded += 1
                    bar.update(1)
                    if index % self.opt.every_nth:
                        continue
                    if not wanted:
                        self.summary.frames_resumed += 1
                        continue
                    self.add_faces(source, index, frame, lm.detect(frame))
                    if self.summary.frames_read % 200 == 0:
                        self.state.save()
        finally:
            bar.close()
            cap.release()
            self.state.save()
        if decoded == 0:
            self.summary.errors.append((str(path), "no frame could be decoded (corrupt, truncated or not a video)"))
            return
        wanted_total = min(expected, self.opt.max_frames or expected)
        if expected > 0 and decoded < wanted_total - max(2, wanted_total // 100):
            self.summary.errors.append(
                (str(path), f"decoding stopped at frame {decoded} of {expected} (file truncated or damaged); faces so far kept")
            )
            return
        self.state.finished[source] = run_key
        self.state.save()

    def images(self, jobs: list[tuple[str, Path]]) -> None:
        """Extract from still images in static mode; unreadable images in folders are skipped and named."""
        todo = [(kind, p) for kind, p in jobs if not self.is_done(str(p.resolve()), 0)]
        self.summary.frames_resumed += len(jobs) - len(todo)
        if not todo:
            return
        with FaceLandmarker(static_images=True, max_faces=self.opt.max_faces) as lm:
            for kind, path in tqdm(todo, desc="images", unit="image", disable=not self.opt.progress, dynamic_ncols=True):
                try:
                    image = read_image_file(path)
                except ImageFileError as exc:  # truncated, corrupt or not an image: named, the others go on
                    why = str(exc).removeprefix(f"{path} ").removeprefix("is ")  # the summary names the file
                    (self.summary.skipped if kind == "folder-image" else self.summary.errors).append((str(path), why))
                    continue
                self.add_faces(str(path.resolve()), 0, image, lm.detect(image))
        self.state.save()


def extract(inputs: list[str | Path], out: str | Path, options: ExtractOptions = ExtractOptions()) -> ExtractSummary:
    """Extract every face of ``inputs`` (videos, image folders, images) into the faceset at ``out``.

    Raises ``FacesetError`` when ``out`` exists and is not a faceset, or is one of another
    resolution/face type. Per-file problems do not raise: they are listed in the summary's
    ``errors`` (corrupt video, missing input, unreadable named image) or ``skipped`` (an unreadable
    or non-image file inside a folder).
    """
    start = time.perf_counter()
    summary = ExtractSummary()
    faceset = Faceset.create(out, options.size, options.face_type, options.crop_scale)
    run = _Extractor(faceset, options, summary)
    jobs = collect_inputs(inputs, summary, Path(out))
    for kind, path in jobs:
        if kind == "video":
            run.video(path)
    run.images([(kind, p) for kind, p in jobs if kind != "video"])
    summary.seconds = time.perf_counter() - start
    return summary
