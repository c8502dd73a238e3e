"""Where live frames go: virtual camera, preview window, video file, nothing (benchmarks).

Every sink has ``write(frame_bgr: np.ndarray, info: FrameInfo) -> None`` and ``close()``; sinks open
lazily on the first frame (they learn its size then), so any number can run at once. The video file
sink, ``VideoFileSink``, lives in ``realtime.frames.recorder`` (H.264 through ffmpeg, crash-safe) and
is importable from here too.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from realtime.frames.recorder import RecordingError, VideoFileSink  # noqa: F401  (the file sink, here too)
from realtime.util.atomic_files import write_image

VCAM_FORMATS = ("RGB", "BGR", "RGBA", "GRAY", "I420", "NV12", "YUYV", "UYVY")
VCAM_HELP = {
    "Linux": "install v4l2loopback and load it: `sudo apt install v4l2loopback-dkms && "
             "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=swapcam`",
    "Windows": "install OBS Studio (26+) and start its Virtual Camera once (Tools -> Start Virtual Camera)",
    "Darwin": "install OBS Studio (28+), start its Virtual Camera once and allow the system extension",
}


class VirtualCameraUnavailable(RuntimeError):
    """No pyvirtualcam backend could open a virtual camera (the message says how to get one)."""


def how_to_get_virtual_camera() -> str:
    return VCAM_HELP.get(platform.system(), "install OBS Studio and start its Virtual Camera")


def bgr_to_format(frame: np.ndarray, fmt: str) -> np.ndarray:
    """Convert a BGR uint8 (H, W, 3) frame to what pyvirtualcam's ``PixelFormat[fmt]`` expects.

    pyvirtualcam sends the bytes as given; the conversion is ours. I420/NV12 need even sizes.
    RGB/BGR/RGBA: (H, W, C); GRAY: (H, W); I420/NV12: (H*3/2, W) planes; YUYV/UYVY: (H, W*2) packed.
    """
    if fmt == "BGR":
        return frame
    if fmt == "RGB":
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    if fmt == "RGBA":
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGBA)
    if fmt == "GRAY":
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    if fmt == "I420":
        return cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420)
    if fmt == "NV12":
        i420 = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420)
        h, w = frame.shape[:2]
        y = i420[:h]
        u = i420[h:h + h // 4].reshape(-1)
        v = i420[h + h // 4:].reshape(-1)
        uv = np.empty(u.size * 2, np.uint8)
        uv[0::2], uv[1::2] = u, v
        return np.vstack([y, uv.reshape(h // 2, w)])
    if fmt == "YUYV":
        return cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_YUYV).reshape(frame.shape[0], -1)
    if fmt == "UYVY":
        return cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_UYVY).reshape(frame.shape[0], -1)
    raise ValueError(f"unknown virtual camera pixel format {fmt!r}; choose one of {', '.join(VCAM_FORMATS)}")


class VirtualCameraSink:
    """pyvirtualcam ``Camera`` (v4l2loopback on Linux, OBS on Windows/macOS) fed with converted frames.

    ``fmt`` is the pixel format sent (RGB works with every built-in backend). Opening fails with
    ``VirtualCameraUnavailable`` naming what to install.
    """

    def __init__(self, *, fps: float = 30.0, fmt: str = "RGB", device: str | None = None,
                 backend: str | None = None) -> None:
        if fmt not in VCAM_FORMATS:
            raise ValueError(f"unknown virtual camera pixel format {fmt!r}; choose one of {', '.join(VCAM_FORMATS)}")
        self.fps, self.fmt, self.device, self.backend = fps, fmt, device, backend
        self.camera = None
        self.frames = 0

    def open(self, width: int, height: int) -> None:
        import pyvirtualcam

        try:
            self.camera = pyvirtualcam.Camera(width, height, self.fps, fmt=pyvirtualcam.PixelFormat[self.fmt],
                                              device=self.device, backend=self.backend)
        except Exception as exc:
            raise VirtualCameraUnavailable(
                f"pyvirtualcam found no virtual camera ({' '.join(str(exc).split()) or type(exc).__name__}). "
                f"To get one, {how_to_get_virtual_camera()}; or choose another output with --sink window|file."
            ) from exc

    def describe(self) -> str:
        if self.camera is None:
            return "virtual camera (not yet opened)"
        return f"virtual camera {self.camera.device} (backend {self.camera.backend}, {self.fmt})"

    def write(self, frame: np.ndarray, info=None) -> None:
        if self.camera is None:
            self.open(frame.shape[1], frame.shape[0])
        self.camera.send(bgr_to_format(frame, self.fmt))
        self.frames += 1

    def close(self) -> None:
        if self.camera is not None:
            self.camera.close()
            self.camera = None


def virtual_camera_available(fmt: str = "RGB", width: int = 640, height: int = 480) -> tuple[bool, str]:
    """Try to open (and close) a virtual camera: (True, device) or (False, the reason and the fix)."""
    sink = VirtualCameraSink(fmt=fmt)
    try:
        sink.open(width, height)
    except VirtualCameraUnavailable as exc:
        return False, str(exc)
    name = sink.describe()
    sink.close()
    return True, name


def display_available() -> bool:
    """A screen to open a window on: always on Windows/macOS, $DISPLAY or $WAYLAND_DISPLAY on Linux."""
    if platform.system() != "Linux":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class NullSink:
    """Discards frames (benchmarks); counts them and keeps the last one."""

    def __init__(self) -> None:
        self.frames = 0
        self.last: np.ndarray | None = None

    def describe(self) -> str:
        return "null sink (frames discarded)"

    def write(self, frame: np.ndarray, info=None) -> None:
        self.frames += 1
        self.last = frame

    def close(self) -> None:
        pass


class CollectSink:
    """Keeps every frame and its info in memory (tests, side-by-side stills). Copies each frame."""

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []
        self.infos: list = []

    def describe(self) -> str:
        return "in-memory collector"

    def write(self, frame: np.ndarray, info=None) -> None:
        self.frames.append(frame.copy())
        self.infos.append(info)

    def close(self) -> None:
        pass


KEY_HELP = "keys: b bypass, o occlusion on/off, e user's eyes on/off, q/Esc quit, n/p next/previous model, s screenshot, h HUD on/off"


class WindowSink:
    """A preview window with a HUD (fps, latency p50/p95, per-stage ms, faces) and keys.

    ``actions`` maps action names to callables: 'quit', 'bypass', 'occlusion', 'next_model', 'prev_model'
    (screenshot and HUD are handled here); ``keys`` adds key -> action name bindings (the live settings'
    hotkeys, ``realtime.live_settings.HOTKEYS``). Screenshots go to ``screenshot_dir`` as PNG.
    """

    KEYS = {ord("q"): "quit", 27: "quit", ord("b"): "bypass", ord("o"): "occlusion", ord("n"): "next_model",
            ord("p"): "prev_model", ord("s"): "screenshot", ord("h"): "hud"}

    def __init__(self, *, title: str = "swapcam", actions: dict[str, Callable[[], object]] | None = None,
                 keys: dict[str, str] | None = None, hud: bool = True, screenshot_dir: str | Path = ".") -> None:
        self.title = title
        self.actions = dict(actions or {})
        self.keys = {**self.KEYS, **{ord(k): action for k, action in (keys or {}).items()}}
        self.hud = hud
        self.screenshot_dir = Path(screenshot_dir)
        self.status = ""
        self._opened = False
        self._last: np.ndarray | None = None

    def describe(self) -> str:
        return f"window '{self.title}' ({KEY_HELP})"

    def write(self, frame: np.ndarray, info=None) -> None:
        if not self._opened:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
            cv2.resizeWindow(self.title, frame.shape[1], frame.shape[0])
            self._opened = True
        self._last = frame
        shown = draw_hud(frame, info, self.status) if self.hud and info is not None else frame
        cv2.imshow(self.title, shown)
        key = cv2.waitKey(1) & 0xFF
        if key != 0xFF:
            self.handle_key(key)

    def handle_key(self, key: int) -> str | None:
        """Run the action bound to ``key``; returns its name."""
        action = self.keys.get(key)
        if action == "hud":
            self.hud = not self.hud
        elif action == "screenshot" and self._last is not None:
            path = self.screenshot_dir / time.strftime("swapcam_%Y%m%d_%H%M%S.png")
            cv2.imwrite(str(path), self._last)
            self.status = f"saved {path}"
        elif action in self.actions:
            result = self.actions[action]()
            if isinstance(result, str):
                self.status = result
        return action

    def close(self) -> None:
        if self._opened:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
            self._opened = False


def draw_hud(frame: np.ndarray, info, status: str = "") -> np.ndarray:
    """A copy of ``frame`` with the figures of ``info`` (a pipeline FrameInfo) in the top-left corner."""
    out = frame.copy()
    stages = " ".join(f"{k[:4]} {v:.0f}" for k, v in info.timings.items() if k not in ("capture", "output"))
    lines = [f"{info.fps:4.1f} fps  latency p50 {info.latency_p50_ms:3.0f} p95 {info.latency_p95_ms:3.0f} ms",
             f"faces {info.faces}  ms: {stages}"]
    if status:
        lines.append(status)
    width = max(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)[0][0] for t in lines) + 16
    panel = out[: 10 + 20 * len(lines), : min(width, out.shape[1])]
    panel[:] = (panel * 0.35).astype(np.uint8)  # darkened panel behind the text
    for i, text in enumerate(lines):
        cv2.putText(out, text, (8, 20 + 20 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def side_by_side(original: np.ndarray, swapped: np.ndarray, path: str | Path, labels: tuple[str, str] = ("input", "swapped")) -> Path:
    """Write a PNG of ``original | swapped`` with labels; returns the path (written atomically)."""
    pair = np.hstack([original, swapped]).copy()
    w = original.shape[1]
    for x, text in ((0, labels[0]), (w, labels[1])):
        tw = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.8, 2)[0][0]
        box = pair[:40, x:x + tw + 16]
        box[:] = (box * 0.35).astype(np.uint8)
        cv2.putText(pair, text, (x + 8, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    return write_image(path, pair)


class SideBySideSink:
    """Writes one PNG still, input | swapped, of the first frame at or after ``at_frame`` with a face
    swapped (or the last frame seen, on close, if none had one)."""

    def __init__(self, path: str | Path, *, at_frame: int = 30) -> None:
        self.path = Path(path)
        self.at_frame = at_frame
        self.written = False
        self._fallback: tuple[np.ndarray, np.ndarray] | None = None

    def describe(self) -> str:
        return f"side-by-side still {self.path} (frame {self.at_frame} or later)"

    def write(self, frame: np.ndarray, info=None) -> None:
        if self.written or info is None or info.source_image is None:
            return
        if info.seq >= self.at_frame and info.faces > 0:
            side_by_side(info.source_image, frame, self.path)
            self.written = True
        else:
            self._fallback = (info.source_image, frame)

    def close(self) -> None:
        if not self.written and self._fallback is not None:
            side_by_side(*self._fallback, self.path)
            self.written = True
