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
    window_s: float = 2.0
    scale: float = 1.0  # the mark's size against a frame marked at this size (0.25: a quarter-width picture)
    angle: float = 0.0  # degrees the picture was turned
    mirrored: bool = False
    notes: list[str] = field(default_factory=list)

    def geometry(self) -> str:
        """How the marked picture sits in the input, when it is not simply the whole frame."""
        parts = []
        if abs(self.scale - 1.0) > 0.03:
            parts.append(f"at {100 * self.scale:.0f}% of the size it was marked at (a picture-in-picture, crop or resize)")
        if abs(self.angle) >= 0.5:
            parts.append(f"turned {self.angle:+.1f} deg")
        if self.mirrored:
            parts.append("mirrored")
        return "; ".join(parts)

    def line(self) -> str:
        from measure.watermark_detect import Z_THRESHOLD

        if not self.found:
            text = (f"{self.path}: NOT FOUND: no swapcam watermark (best sync z {self.z:.1f}, needs {Z_THRESHOLD:.0f} "
                    f"and a payload whose checksum matches; {self.frames} frame(s) examined)")
        else:
            text = (f"{self.path}: FOUND swapcam watermark: {self.payload.describe()}; confidence: sync z "
                    f"{self.z:.1f} (threshold {Z_THRESHOLD:.0f}), {100 * self.bit_agreement:.0f}% of coded bits "
                    f"consistent, checksum ok; agreed: {self.windows_agreeing} of {self.windows} "
                    f"{f'window(s) of {self.window_s:g} s' if self.windows > 1 or self.frames > 1 else 'still'} "
                    f"({self.frames_agreeing} of {self.frames} frames)")
            if self.geometry():
                text += f"; mark found {self.geometry()}"
            for note in self.notes:
                text += f"; {note}"
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
                "frames_agreeing": self.frames_agreeing, "scale": self.scale, "angle_deg": self.angle,
                "mirrored": self.mirrored, "notes": self.notes, "credentials": self.credentials}


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


# Frames bigger than this are read every other frame: a 1080p canvas costs 2.25x a 720p frame to whiten,
# and a codec carries the static mark from frame to frame (the sync z of a 2-s window moves by < 0.6).
STRIDE_ABOVE_PIXELS = 1280 * 720


def _video_windows(path: Path, window_s: float, max_seconds: float | None):
    """(residual average of one window) for each window of a video, decoded to grey by the ffmpeg binary;
    raises VerifyInputError when unreadable."""
    import imageio_ffmpeg
    import numpy as np

    from measure.watermark_detect import ResidualAverage

    probe = imageio_ffmpeg.read_frames(str(path), pix_fmt="gray", bits_per_pixel=8)
    try:
        meta = next(probe)
    except (RuntimeError, OSError, StopIteration) as exc:
        raise VerifyInputError(f"{path}: not a readable video or image") from exc
    finally:
        probe.close()
    fps = meta.get("fps") or 25.0
    fps = fps if 1 <= fps <= 240 else 25.0
    w, h = meta["size"]
    stride = 2 if w * h > STRIDE_ABOVE_PIXELS else 1
    output = ["-fps_mode", "passthrough"] + (["-vf", f"select=not(mod(n\\,{stride}))"] if stride > 1 else [])
    if max_seconds is not None:
        output = ["-t", f"{max_seconds:g}", *output]
    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="gray", bits_per_pixel=8, output_params=output)
    n = max(1, int(round(window_s * fps / stride)))
    acc, read = ResidualAverage(), 0
    try:
        next(reader)
        for buf in reader:
            acc.add(np.frombuffer(buf, np.uint8).reshape(h, w))
            read += 1
            if acc.frames == n:
                yield acc
                acc = ResidualAverage()
    except RuntimeError as exc:
        if read == 0:
            raise VerifyInputError(f"{path}: no frames could be decoded ({exc})") from exc
    finally:
        reader.close()
    if read == 0:
        raise VerifyInputError(f"{path}: no frames could be decoded")
    if acc.frames and (acc.frames >= n // 2 or read < n):  # a tail shorter than half a window is too weak alone
        yield acc


def verify_file(path: Path, window_s: float = 2.0, max_seconds: float | None = None) -> Verdict:
    """Detect the watermark in one image or video file."""
    import cv2

    from measure.watermark_detect import detect_frames, detect_residuals

    if not path.exists():
        raise VerifyInputError(f"{path}: no such file")
    overall_found = None
    if path.suffix.lower() in IMAGE_SUFFIXES:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise VerifyInputError(f"{path}: not a readable image")
        detections = [detect_frames([image])]
    else:
        from tqdm import tqdm

        windows = tqdm(_video_windows(path, window_s, max_seconds), desc=path.name, unit="window", leave=False,
                       disable=None)  # progress on a terminal only
        detections, whole = [], None
        for acc in windows:
            means = acc.means()
            detections.append(detect_residuals(means, acc.frames))
            if whole is None or whole[0].shape != means[0].shape:
                whole = [means[0] * acc.frames, means[1] * acc.frames, acc.frames]
            else:
                whole = [whole[0] + means[0] * acc.frames, whole[1] + means[1] * acc.frames, whole[2] + acc.frames]
        if len(detections) > 1 and not any(d.found for d in detections):
            # Too faint in every window alone (e.g. a small picture-in-picture of a moving camera): the mark is
            # static, so the whole clip's average may still show it.
            overall = detect_residuals((whole[0] / whole[2], whole[1] / whole[2]), whole[2])
            if overall.found:
                overall_found = overall
    found = [d for d in detections if d.found]
    best = max(detections, key=lambda d: d.z)
    verdict = Verdict(path, False, z=best.z, windows=len(detections), frames=sum(d.frames for d in detections),
                      window_s=window_s, scale=best.scale, angle=best.angle, mirrored=best.mirrored)
    if found:
        payload, _ = Counter(d.payload for d in found).most_common(1)[0]
        agreeing = [d for d in found if d.payload == payload]
        best = max(agreeing, key=lambda d: d.z)
        verdict.found, verdict.payload, verdict.z, verdict.bit_agreement = True, payload, best.z, best.bit_agreement
        verdict.scale, verdict.angle, verdict.mirrored = best.scale, best.angle, best.mirrored
        verdict.windows_agreeing, verdict.frames_agreeing = len(agreeing), sum(d.frames for d in agreeing)
    elif overall_found is not None:
        best = overall_found
        verdict.found, verdict.payload, verdict.z, verdict.bit_agreement = True, best.payload, best.z, best.bit_agreement
        verdict.scale, verdict.angle, verdict.mirrored = best.scale, best.angle, best.mirrored
        verdict.frames_agreeing = best.frames
        verdict.notes.append(f"too faint in any {window_s:g}-s window alone; found in the average of all "
                             f"{len(detections)} windows")
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
