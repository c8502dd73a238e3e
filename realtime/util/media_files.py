"""Image and video files read whole or refused with the reason: a truncated file is named as truncated.

OpenCV's ``imread`` decodes a JPEG cut short as far as the data goes and fills the rest with grey (libjpeg
prints "Premature end of JPEG file" and the caller gets a half-grey picture that later checks misread,
e.g. as a greyscale photo); ``VideoCapture`` says only that a video does not open. Here:

- ``read_image_file(path)`` reads the bytes once, checks that the file ends where its format says it
  ends (JPEG's end-of-image marker, PNG's IEND chunk), and decodes those bytes as ``cv2.imread`` would
  (EXIF orientation applied unless ``IMREAD_UNCHANGED``); ``ImageFileError`` says truncated or corrupt.
- ``warn(text)``: the one stderr line for input that was skipped or ended early while a run goes on.
- ``video_problem(path)`` asks the ffmpeg binary that imageio-ffmpeg ships why a video does not open
  (e.g. "moov atom not found": an MP4 whose recording never finished) and says it in one line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"
PNG_START, PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND"
# Bytes after the end marker that a complete file may still carry (padding some cameras and editors add).
TAIL_BYTES = 1024


class ImageFileError(ValueError):
    """An image file that cannot be used: missing, truncated, corrupt, or not an image format."""


def truncation(data: bytes | np.ndarray) -> str | None:
    """Why the encoded image ``data`` is cut short, or None when its format's end marker is where it belongs.

    Only JPEG and PNG carry an end marker to check; other formats return None (their decoder decides).
    """
    head, tail = bytes(data[:8]), bytes(data[-TAIL_BYTES:])
    if head.startswith(JPEG_START) and JPEG_END not in tail:
        return "truncated: the JPEG data stops before its end-of-image marker"
    if head.startswith(PNG_START) and PNG_END not in tail[-64:]:
        return "truncated: the PNG data stops before its IEND chunk"
    return None


def read_image_file(path: str | Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """The image at ``path`` decoded with ``cv2.imdecode(..., flags)``, or ImageFileError saying why not."""
    path = Path(path)
    try:
        data = np.fromfile(str(path), np.uint8)
    except OSError as exc:
        raise ImageFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if data.size == 0:
        raise ImageFileError(f"{path} is empty (0 bytes)")
    reason = truncation(data)
    if reason:
        raise ImageFileError(f"{path} is {reason} ({data.size} bytes); copy or export it again")
    image = cv2.imdecode(data, flags)
    if image is None or image.size == 0:
        raise ImageFileError(f"{path} cannot be decoded: corrupt, or not an image format OpenCV reads")
    return image


def warn(text: str) -> None:
    """One line on stderr about input that was skipped or cut short (the run goes on)."""
    print(f"swapcam: warning: {text}", file=sys.stderr, flush=True)


def video_problem(path: str | Path, timeout_s: float = 20.0) -> str:
    """One line on why ``path`` does not open as a video: ffmpeg's own diagnosis where it has one."""
    path = Path(path)
    try:
        import imageio_ffmpeg

        probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-v", "error", "-i", str(path),
                                "-frames:v", "1", "-f", "null", "-"], capture_output=True, text=True,
                               timeout=timeout_s)
    except (ImportError, OSError, RuntimeError, subprocess.TimeoutExpired):
        return f"{path} cannot be decoded as a video (truncated or corrupt, or a codec this OpenCV build lacks)"
    lines = [ln.split("] ", 1)[-1].strip() for ln in probe.stderr.splitlines() if ln.strip()]
    said = next((ln for ln in lines if not ln.lower().startswith("error opening input")), lines[0] if lines else "")
    if probe.returncode == 0 and not said:
        return f"{path} is a video ffmpeg reads but this OpenCV build cannot decode (an unsupported codec)"
    if "moov atom not found" in said:
        return f"{path} is truncated (ffmpeg: {said!r}, an MP4 whose writing never finished)"
    return f"{path} cannot be decoded as a video (ffmpeg: {said or 'no reason given'!r}): truncated or corrupt"
