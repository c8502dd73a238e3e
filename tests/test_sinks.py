"""Sinks: pixel-format conversion through pyvirtualcam's own Camera (test backend registered), the
window's keys and HUD, the side-by-side still. Video files: tests/test_recorder.py."""

from __future__ import annotations

import platform

import cv2
import numpy as np
import pytest
import pyvirtualcam

from realtime.pipeline import FrameInfo
from realtime.frames.sinks import (
    VCAM_FORMATS,
    VirtualCameraSink,
    VirtualCameraUnavailable,
    WindowSink,
    draw_hud,
    side_by_side,
    virtual_camera_available,
)


class RecordingBackend:
    """A pyvirtualcam backend (the documented Backend interface) that keeps what it is sent."""

    sent: list[np.ndarray] = []
    opened: list[dict] = []

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        type(self).opened.append(dict(width=width, height=height, fps=fps, fourcc=fourcc, device=device))
        self._fourcc = fourcc

    def send(self, frame):
        type(self).sent.append(frame.copy())

    def close(self):
        pass

    def device(self):
        return "test-device"

    def native_fourcc(self):
        return self._fourcc


@pytest.fixture()
def recording_backend():
    RecordingBackend.sent, RecordingBackend.opened = [], []
    pyvirtualcam.register_backend("swapcam-test", RecordingBackend)
    yield RecordingBackend
    pyvirtualcam.camera.BACKENDS.pop("swapcam-test", None)


def _back_to_bgr(data: np.ndarray, fmt: str, w: int, h: int) -> np.ndarray:
    """Decode what the camera received with OpenCV's own converters (independent of ours)."""
    if fmt == "RGB":
        return cv2.cvtColor(data.reshape(h, w, 3), cv2.COLOR_RGB2BGR)
    if fmt == "BGR":
        return data.reshape(h, w, 3)
    if fmt == "RGBA":
        return cv2.cvtColor(data.reshape(h, w, 4), cv2.COLOR_RGBA2BGR)
    if fmt == "GRAY":
        return cv2.cvtColor(data.reshape(h, w), cv2.COLOR_GRAY2BGR)
    if fmt == "I420":
        return cv2.cvtColor(data.reshape(h * 3 // 2, w), cv2.COLOR_YUV2BGR_I420)
    if fmt == "NV12":
        return cv2.cvtColor(data.reshape(h * 3 // 2, w), cv2.COLOR_YUV2BGR_NV12)
    if fmt == "YUYV":
        return cv2.cvtColor(data.reshape(h, w, 2), cv2.COLOR_YUV2BGR_YUYV)
    return cv2.cvtColor(data.reshape(h, w, 2), cv2.COLOR_YUV2BGR_UYVY)


@pytest.mark.parametrize("fmt", VCAM_FORMATS)
def test_virtual_camera_sink_converts_for_each_pixel_format(recording_backend, astronaut, fmt):
    frame = np.ascontiguousarray(cv2.resize(astronaut, (320, 240)))
    sink = VirtualCameraSink(fps=30, fmt=fmt, backend="swapcam-test")
    sink.write(frame)
    sink.write(frame[::-1].copy())
    assert "test-device" in sink.describe()
    sink.close()
    opened = recording_backend.opened[0]
    assert (opened["width"], opened["height"]) == (320, 240)
    assert opened["fourcc"] == pyvirtualcam.util.encode_fourcc(pyvirtualcam.PixelFormat[fmt].value)
    assert len(recording_backend.sent) == 2
    back = _back_to_bgr(recording_backend.sent[0], fmt, 320, 240).astype(int)
    if fmt == "GRAY":
        expected = cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        assert np.array_equal(back, expected)
    elif fmt in ("RGB", "BGR", "RGBA"):
        assert np.array_equal(back, frame)  # lossless formats: exact
    else:
        assert np.abs(back - frame).mean() < 6.0  # chroma subsampling: close, not exact
        assert np.abs(back - frame[::-1]).mean() > 20.0  # and it is this frame, not another


def test_virtual_camera_unavailable_says_how_to_get_one():
    ok, why = virtual_camera_available()
    if ok:
        pytest.skip(f"this machine has a virtual camera ({why})")
    assert "pyvirtualcam found no virtual camera" in why
    if platform.system() == "Linux":
        assert "modprobe v4l2loopback" in why
    with pytest.raises(VirtualCameraUnavailable, match="--sink window|file"):
        VirtualCameraSink().write(np.zeros((48, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="pixel format"):
        VirtualCameraSink(fmt="XYZ")


def _info(**kw) -> FrameInfo:
    base = dict(seq=3, t_capture=0.0, timings={"landmarks": 9.0, "swap": 12.0}, faces=1, fps=29.5,
                latency_p50_ms=40.0, latency_p95_ms=60.0)
    base.update(kw)
    return FrameInfo(**base)


def test_window_keys_and_hud_without_a_display(astronaut, tmp_path):
    calls = []
    win = WindowSink(actions={"bypass": lambda: calls.append("b") or "bypass ON", "quit": lambda: calls.append("q"),
                              "next_model": lambda: calls.append("n"), "prev_model": lambda: calls.append("p"),
                              "occlusion": lambda: calls.append("o") or "occlusion off"},
                     screenshot_dir=tmp_path)
    for key in "bnpq":
        win.handle_key(ord(key))
    assert calls == ["b", "n", "p", "q"] and win.status == "bypass ON"
    assert win.handle_key(ord("o")) == "occlusion" and calls[-1] == "o" and win.status == "occlusion off"
    assert win.handle_key(27) == "quit"
    win.handle_key(ord("h"))
    assert win.hud is False
    win._last = astronaut
    win.handle_key(ord("s"))
    shots = list(tmp_path.glob("swapcam_*.png"))
    assert len(shots) == 1 and np.array_equal(cv2.imread(str(shots[0])), astronaut)
    hud = draw_hud(astronaut, _info(), "status")
    assert hud.shape == astronaut.shape and not np.array_equal(hud[:70], astronaut[:70])
    assert np.array_equal(hud[200:], astronaut[200:])  # only the corner is written


def test_side_by_side_still(tmp_path, astronaut, grace_hopper):
    b = cv2.resize(grace_hopper, astronaut.shape[1::-1])
    path = side_by_side(astronaut, b, tmp_path / "pair.png")
    img = cv2.imread(str(path))
    assert img.shape == (512, 1024, 3)
    assert np.array_equal(img[100:, 512:], b[100:])
