"""Frame sources for the live loop: webcam, video file, image folder (and the demo source elsewhere).

Every source exposes ``read() -> np.ndarray | None`` (the next BGR uint8 frame, blocking at the
source's own pace; None when it has ended), ``fps``, ``live`` (True when frames arrive on their own
clock, like a camera, so old ones may be dropped; False when every frame can wait to be processed),
``describe()`` and ``close()``. ``CaptureThread`` runs a source in its own thread, stamps each frame
with its capture time (``time.perf_counter``) and sequence number, and keeps only the newest.
"""

from __future__ import annotations

import glob
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from realtime.frames.pacing import Pacer
from realtime.util.media_files import ImageFileError, read_image_file, video_problem, warn

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


class SourceError(RuntimeError):
    """A source that cannot be opened (the message says what was tried and what exists)."""


@dataclass(frozen=True)
class Frame:
    """One captured frame: BGR uint8 image, sequence number (0, 1, ...), capture time (perf_counter s)
    and the ms the source's ``read`` took after any pacing wait (decode / driver time)."""

    image: np.ndarray
    seq: int
    t_capture: float
    read_ms: float = 0.0
    t_source: float | None = None  # media time for sources read as fast as possible (seq / fps)

    @property
    def t(self) -> float:
        """The frame's time for temporal filters: media time when set, else capture time."""
        return self.t_capture if self.t_source is None else self.t_source


def list_cameras(max_index: int = 10) -> list[str]:
    """Cameras that open: indexes 0..max_index-1 and /dev/video* paths (Linux). Slow-ish: opens each."""
    found = []
    devices = sorted(glob.glob("/dev/video*"))
    candidates: list[int | str] = list(range(max_index)) if not devices else devices
    for cand in candidates:
        cap = cv2.VideoCapture(cand)
        try:
            if cap.isOpened() and cap.read()[0]:
                found.append(str(cand))
        finally:
            cap.release()
    return found


@dataclass(frozen=True)
class CameraMode:
    """A camera that opens, with the frame size and rate it delivers when asked for ``width`` x ``height``."""

    device: str
    width: int
    height: int
    fps: float

    def describe(self) -> str:
        return f"camera {self.device} ({self.width}x{self.height} @ {self.fps:.0f} fps)"


def probe_cameras(width: int = 640, height: int = 480, fps: float = 30.0) -> list[CameraMode]:
    """The cameras that open and deliver a frame (``list_cameras``), each with the mode it gives for the size
    and rate asked. Opens every camera: call it off a GUI thread."""
    if not glob.glob("/dev/video*") and os.name == "posix" and os.uname().sysname == "Linux":
        return []  # Linux without /dev/video*: no camera; skip ten slow failing opens (and OpenCV's complaints)
    found = []
    for device in list_cameras():
        try:
            cam = WebcamSource(int(device) if device.isdigit() else device, width=width, height=height, fps=fps)
        except SourceError:
            continue
        try:
            w, h = int(cam._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cam._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            found.append(CameraMode(device, w, h, cam.fps))
        finally:
            cam.close()
    return found


class WebcamSource:
    """A camera by index (0, 1, ...) or device path, with a driver buffer of one frame.

    Requests ``width`` x ``height`` at ``fps`` in MJPG (most USB cameras deliver full rate only in
    MJPG); the driver may give something else — ``describe()`` says what was obtained. With
    ``reconnect`` a camera that stops delivering is reopened instead of ending the stream.
    """

    live = True

    def __init__(
        self,
        device: int | str = 0,
        *,
        width: int | None = 640,
        height: int | None = 480,
        fps: float | None = 30.0,
        mjpg: bool = True,
        reconnect: bool = False,
        reconnect_timeout_s: float = 10.0,
    ) -> None:
        self.device = device
        self._settings = (width, height, fps, mjpg)
        self.reconnect = reconnect
        self.reconnect_timeout_s = reconnect_timeout_s
        self._cap = self._open()
        if self._cap is None:
            found = list_cameras()
            listing = ", ".join(found) if found else "none"
            raise SourceError(
                f"camera {device!r} does not open. Cameras found: {listing}. "
                "Pass another one with --source INDEX|/dev/videoN, or a video file / image folder / 'demo'."
            )
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or fps or 30.0)

    def _open(self) -> cv2.VideoCapture | None:
        width, height, fps, mjpg = self._settings
        cap = cv2.VideoCapture(self.device)
        if not cap.isOpened():
            cap.release()
            return None
        if mjpg:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
        if width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        if fps:
            cap.set(cv2.CAP_PROP_FPS, fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return cap

    def read(self) -> np.ndarray | None:
        ok, frame = self._cap.read() if self._cap is not None else (False, None)
        if ok:
            return frame
        if not self.reconnect:
            return None
        deadline = time.perf_counter() + self.reconnect_timeout_s
        while time.perf_counter() < deadline:
            if self._cap is not None:
                self._cap.release()
            time.sleep(0.5)
            self._cap = self._open()
            if self._cap is not None:
                ok, frame = self._cap.read()
                if ok:
                    return frame
        return None

    def describe(self) -> str:
        if self._cap is None:
            return f"camera {self.device} (closed)"
        w, h = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        return f"camera {self.device} ({w}x{h} @ {self.fps:.0f} fps)"

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class VideoFileSource:
    """A video file, paced at its own fps like a camera (``realtime=True``) or as fast as it decodes.

    ``realtime=False`` makes the source not ``live``: the pipeline then processes every frame in order.
    """

    def __init__(self, path: str | Path, *, realtime: bool = True, loop: bool = False) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"video file not found: {self.path}")
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(video_problem(self.path))
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 30.0)
        if not 1.0 <= self.fps <= 240.0:
            self.fps = 30.0
        self.frame_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.realtime = realtime
        self.live = realtime
        self.loop = loop
        self._pacer = Pacer(self.fps if realtime else None)
        self._position = 0  # frames read since the start (or the last loop)
        self.cut_short_at: int | None = None  # where the file ended before its stated frame count, once seen

    def read(self) -> np.ndarray | None:
        self._pacer.wait()
        ok, frame = self._cap.read()
        if not ok:
            self._ended_at(self._position)
            if self.loop:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                self._position = 0
                ok, frame = self._cap.read()
        self._position += int(ok)
        return frame if ok else None

    def _ended_at(self, frames: int) -> None:
        """Say once when the file ends well before the frame count its container states (cut short)."""
        if self.cut_short_at is None and self.frame_count and frames < 0.98 * self.frame_count - 2:
            self.cut_short_at = frames
            warn(f"video {self.path} ended after {frames} of its {self.frame_count} frames: "
                 "the rest is truncated or damaged")

    def describe(self) -> str:
        w, h = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        pace = f"paced at {self.fps:.0f} fps" if self.realtime else "as fast as possible"
        return f"video {self.path} ({w}x{h}, {self.frame_count} frames, {pace}{', looped' if self.loop else ''})"

    def close(self) -> None:
        self._cap.release()


class ImageFolderSource:
    """The images of a folder in name order, paced at ``fps`` (or as fast as possible), optionally looped."""

    def __init__(self, folder: str | Path, *, fps: float = 30.0, realtime: bool = True, loop: bool = False) -> None:
        self.folder = Path(folder)
        self.files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if self.folder.is_dir() else []
        if not self.files:
            raise SourceError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {self.folder}")
        self.fps = float(fps)
        self.live = realtime
        self.loop = loop
        self._index = 0
        self._pacer = Pacer(self.fps if realtime else None)
        self.skipped: set[Path] = set()  # files that are truncated, corrupt or unreadable (each said once)

    def read(self) -> np.ndarray | None:
        while len(self.skipped) < len(self.files):
            if self._index >= len(self.files):
                if not self.loop:
                    return None
                self._index = 0
            path = self.files[self._index]
            self._index += 1
            try:
                image = read_image_file(path)
            except ImageFileError as exc:
                if path not in self.skipped:
                    self.skipped.add(path)
                    warn(f"skipped {exc}")
                continue
            self._pacer.wait()
            return image

    def describe(self) -> str:
        return f"image folder {self.folder} ({len(self.files)} images at {self.fps:.0f} fps)"

    def close(self) -> None:
        pass


def open_source(
    spec: str,
    *,
    width: int | None = 640,
    height: int | None = 480,
    fps: float | None = 30.0,
    mjpg: bool = True,
    realtime: bool = True,
    loop: bool = False,
    reconnect: bool = False,
    demo_seconds: float = 10.0,
):
    """A source from a command-line string: 'demo', a camera index or /dev/videoN, a video file, an image folder."""
    if spec == "demo":
        from realtime.frames.demo_source import DemoSource

        return DemoSource(fps=fps or 30.0, seconds=demo_seconds, loop=loop, realtime=realtime)
    if spec.isdigit() or spec.startswith("/dev/video"):
        return WebcamSource(int(spec) if spec.isdigit() else spec, width=width, height=height, fps=fps, mjpg=mjpg,
                            reconnect=reconnect)
    path = Path(spec)
    if path.is_dir():
        return ImageFolderSource(path, fps=fps or 30.0, realtime=realtime, loop=loop)
    if path.is_file():
        return VideoFileSource(path, realtime=realtime, loop=loop)
    raise SourceError(f"source {spec!r} is not 'demo', a camera index, an existing video file or an image folder")


def first_webcam(**kwargs) -> WebcamSource | None:
    """The first camera (index 0-9 or /dev/video*) that opens and delivers a frame, or None."""
    devices = sorted(glob.glob("/dev/video*"))
    if not devices and os.name == "posix" and os.uname().sysname == "Linux":
        return None  # Linux without /dev/video*: no camera; skip ten slow failing opens
    for cand in devices or range(10):
        try:
            cam = WebcamSource(cand, **kwargs)
        except SourceError:
            continue
        frame = cam.read()
        if frame is not None:
            return cam
        cam.close()
    return None


class SwitchableSource:
    """A source whose frames come from another source that can be replaced while it runs (the live session's
    source picker): ``switch(new)`` makes the next ``read`` come from ``new`` and closes the old one there,
    in the capture thread, so capture never restarts. ``live`` is the first source's (the pipeline reads
    it once); ``read`` returns None (the end) when no source is set."""

    def __init__(self, source) -> None:
        self._source = source
        self._next = None
        self._lock = threading.Lock()
        self.live = getattr(source, "live", True)

    @property
    def current(self):
        return self._next or self._source

    @property
    def fps(self) -> float:
        return float(getattr(self.current, "fps", 30.0) or 30.0)

    @property
    def _pacer(self):  # the capture thread reads the pacing wait of the source that produced the frame
        return getattr(self._source, "_pacer", None)

    def switch(self, source) -> None:
        """Read from ``source`` from the next frame on (a source given earlier and not yet read is closed)."""
        with self._lock:
            pending, self._next = self._next, source
        if pending is not None:
            pending.close()

    def read(self) -> np.ndarray | None:
        with self._lock:
            old = None
            if self._next is not None:
                old, self._source, self._next = self._source, self._next, None
        if old is not None:
            old.close()
        return self._source.read() if self._source is not None else None

    def describe(self) -> str:
        current = self.current
        return current.describe() if current is not None else "no source"

    def close(self) -> None:
        with self._lock:
            sources, self._source, self._next = (self._source, self._next), None, None
        for source in sources:
            if source is not None:
                source.close()


class CaptureThread:
    """Runs ``source.read()`` in its own thread and hands frames to ``deliver(Frame)``.

    Each frame gets its sequence number and ``time.perf_counter()`` capture time the moment the
    source returns it. The thread ends when the source ends, when ``stop()`` is called, or when
    ``deliver`` returns False. ``ended`` tells whether the source ran out (vs. being stopped).
    """

    def __init__(self, source, deliver) -> None:
        self.source = source
        self._deliver = deliver
        self._stop = threading.Event()
        self.ended = threading.Event()
        self.error: BaseException | None = None
        self.frames = 0
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                t_start = time.perf_counter()
                image = self.source.read()
                t_capture = time.perf_counter()
                if image is None:
                    break
                waited = getattr(getattr(self.source, "_pacer", None), "last_wait_s", 0.0)
                t_source = None if getattr(self.source, "live", True) else self.frames / float(getattr(self.source, "fps", 30.0) or 30.0)
                frame = Frame(image, self.frames, t_capture, max(0.0, (t_capture - t_start - waited) * 1000), t_source)
                self.frames += 1
                if self._deliver(frame) is False:
                    break
        except BaseException as exc:  # surfaced by the pipeline, never swallowed
            self.error = exc
        finally:
            self.ended.set()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
