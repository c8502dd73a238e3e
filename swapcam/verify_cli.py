"""`swapcam verify FILE|FOLDER|IMAGE...`: does this video or picture carry swapcam's watermark?

Per input it prints found or not, the payload (the fingerprint of the model or photo that made it,
and the UTC hour), the confidence (sync z-score, and how consistent the decoded bits are) and how
many 2-second windows (and their frames) agreed on the payload; for a video file that carries a
C2PA manifest, what the manifest says. A folder is every image and video directly inside it.

Exit status: 0 when every input carries the mark, 1 when at least one does not, 2 when an input
could not be read (a one-line message names it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".ts", ".flv"}


class VerifyInputError(RuntimeError):
    """An input that cannot be read as an image or a video."""


@dataclass
class Verdict:
    """The result for one input."""

    path: Path
    found: bool
    payload: object = None  # realtime.marking.watermark.Payload
    z: float = 0.0
    bit_agreement: float = 0.0
    windows: int = 0
    windows_agreeing: int = 0
    frames: int = 0
    frames_agreeing: int = 0
    credentials: dict | None = None
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        from measure.watermark_detect import Z_THRESHOLD

        if not self.found:
            text = (f"{self.path}: NOT FOUND: no swapcam watermark (best sync z {self.z:.1f}, needs {Z_THRESHOLD:.0f} "
                    f"and a payload whose checksum matches; {self.frames} frame(s) examined)")
        else:
            text = (f"{self.path}: FOUND swapcam watermark: {self.payload.describe()}; confidence: sync z "
                    f"{self.z:.1f} (threshold {Z_THRESHOLD:.0f}), {100 * self.bit_agreement:.0f}% of coded bits "
                    f"consistent, checksum ok; agreed: {self.windows_agreeing} of {self.windows} "
                    f"{'window(s) of 2 s' if self.windows > 1 or self.frames > 1 else 'still'} "
                    f"({self.frames_agreeing} of {self.frames} frames)")
        if self.credentials:
            text += f"\n    content credentials (C2PA): {self.credentials.get('summary')}"
        return text

    def as_dict(self) -> dict:
        return {"path": str(self.path), "found": self.found,
                "fingerprint": self.payload.fingerprint.hex() if self.payload else None,
                "hour_utc": self.payload.time.isoformat() if self.payload else None,
                "format_version": self.payload.version if self.payload else None,
                "sync_z": self.z, "bit_agreement": self.bit_agreement, "windows": self.windows,
                "windows_agreeing": self.windows_agreeing, "frames": self.frames,
                "frames_agreeing": self.frames_agreeing, "credentials": self.credentials}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, metavar="FILE|FOLDER|IMAGE",
                        help="videos, images, or folders of them")
    parser.add_argument("--window", type=float, default=2.0, help="seconds of video averaged per detection")
    parser.add_argument("--max-seconds", type=float, default=None, help="examine at most this much of each video")
    parser.add_argument("--json", type=Path, default=None, help="also write the verdicts as JSON here")


def expand(inputs: list[Path]) -> list[Path]:
    """Files to check: the files given, and the images and videos directly inside given folders."""
    out: list[Path] = []
    for path in inputs:
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
            if not inside:
                raise VerifyInputError(f"{path}: a folder with no images or videos in it")
            out.extend(inside)
        else:
            out.append(path)
    return out


def _video_windows(path: Path, window_s: float, max_seconds: float | None):
    """(frames of one window) for each window of a video; raises VerifyInputError when unreadable."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VerifyInputError(f"{path}: not a readable video or image")
    fps = cap.get(cv2.CAP_PROP_FPS)
    fps = fps if fps and 1 <= fps <= 240 else 25.0
    n = max(1, int(round(window_s * fps)))
    limit = None if max_seconds is None else int(max_seconds * fps)
    buf, read = [], 0
    try:
        while limit is None or read < limit:
            ok, frame = cap.read()
            if not ok:
                break
            read += 1
            buf.append(frame)
            if len(buf) == n:
                yield buf
                buf = []
    finally:
        cap.release()
    if read == 0:
        raise VerifyInputError(f"{path}: no frames could be decoded")
    if buf and (len(buf) >= n // 2 or read < n):  # a tail shorter than half a window is too weak alone
        yield buf


def verify_file(path: Path, window_s: float = 2.0, max_seconds: float | None = None) -> Verdict:
    """Detect the watermark in one image or video file."""
    import cv2

    from measure.watermark_detect import detect_frames

    if not path.exists():
        raise VerifyInputError(f"{path}: no such file")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise VerifyInputError(f"{path}: not a readable image")
        detections = [detect_frames([image])]
    else:
        from tqdm import tqdm

        windows = tqdm(_video_windows(path, window_s, max_seconds), desc=path.name, unit="window", leave=False,
                       disable=None)  # progress on a terminal only
        detections = [detect_frames(win) for win in windows]
    found = [d for d in detections if d.found]
    verdict = Verdict(path, False, z=max(d.z for d in detections), windows=len(detections),
                      frames=sum(d.frames for d in detections))
    if found:
        payload, _ = Counter(d.payload for d in found).most_common(1)[0]
        agreeing = [d for d in found if d.payload == payload]
        best = max(agreeing, key=lambda d: d.z)
        verdict.found, verdict.payload, verdict.z, verdict.bit_agreement = True, payload, best.z, best.bit_agreement
        verdict.windows_agreeing, verdict.frames_agreeing = len(agreeing), sum(d.frames for d in agreeing)
    if path.suffix.lower() in VIDEO_SUFFIXES | IMAGE_SUFFIXES:
        verdict.credentials = _credentials(path)
    return verdict


def _credentials(path: Path) -> dict | None:
    try:
        from realtime.marking.content_credentials import read_credentials
    except ImportError:
        return None
    return read_credentials(path)


def main(args: argparse.Namespace) -> int:
    errors, verdicts = 0, []
    try:
        files = expand(args.inputs)
    except VerifyInputError as exc:
        print(f"swapcam verify: error: {exc}", file=sys.stderr)
        return 2
    for path in files:
        try:
            verdict = verify_file(path, args.window, args.max_seconds)
        except VerifyInputError as exc:
            print(f"swapcam verify: error: {exc}", file=sys.stderr, flush=True)
            errors += 1
            continue
        verdicts.append(verdict)
        print(verdict.line(), flush=True)
    if args.json:
        from realtime.util.atomic_files import write_text

        write_text(args.json, json.dumps([v.as_dict() for v in verdicts], indent=2))
    if errors:
        return 2
    return 0 if all(v.found for v in verdicts) else 1
