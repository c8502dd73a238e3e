"""Frame sources: real video files, image folders, the built-in demo, cameras that do not exist."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from realtime.frames.demo_source import DemoSource
from realtime.frames.sources import (
    CaptureThread,
    ImageFolderSource,
    SourceError,
    VideoFileSource,
    WebcamSource,
    open_source,
)


def _drain(source, limit: int = 10_000) -> list[np.ndarray]:
    frames = []
    while len(frames) < limit:
        f = source.read()
        if f is None:
            break
        frames.append(f)
    return frames


def test_video_file_unpaced_reads_every_frame_in_order(astronaut_video):
    src = VideoFileSource(astronaut_video, realtime=False)
    assert not src.live and src.fps == pytest.approx(25.0)
    frames = _drain(src)
    src.close()
    cap = cv2.VideoCapture(str(astronaut_video))
    ok, first = cap.read()
    cap.release()
    assert len(frames) == 40 and frames[0].shape == (480, 640, 3)
    assert np.array_equal(frames[0], first)
    assert "40 frames" in VideoFileSource(astronaut_video).describe()


def test_video_file_paced_like_a_camera_and_loops(astronaut_video):
    src = VideoFileSource(astronaut_video, realtime=True, loop=True)
    assert src.live
    t0 = time.perf_counter()
    frames = _drain(src, limit=11)
    elapsed = time.perf_counter() - t0
    src.close()
    assert len(frames) == 11
    assert elapsed >= 10 / 25 - 0.02  # frame i is released no earlier than i / fps
    looped = VideoFileSource(astronaut_video, realtime=False, loop=True)
    many = _drain(looped, limit=45)
    looped.close()
    assert len(many) == 45 and np.array_equal(many[40], many[0])


def test_image_folder(tmp_path, astronaut, grace_hopper):
    cv2.imwrite(str(tmp_path / "b.png"), grace_hopper)
    cv2.imwrite(str(tmp_path / "a.png"), astronaut)
    (tmp_path / "notes.txt").write_text("not an image")
    src = ImageFolderSource(tmp_path, realtime=False)
    frames = _drain(src)
    assert len(frames) == 2 and np.array_equal(frames[0], astronaut)  # name order
    looped = ImageFolderSource(tmp_path, realtime=False, loop=True)
    assert len(_drain(looped, limit=5)) == 5
    with pytest.raises(SourceError, match="no images"):
        ImageFolderSource(tmp_path / "missing")


def test_a_truncated_image_in_a_folder_is_skipped_and_named(tmp_path, astronaut, grace_hopper, capfd):
    """A JPEG cut short is not fed to the loop as a half-grey frame: it is skipped, said once, by name."""
    cv2.imwrite(str(tmp_path / "a.png"), astronaut)
    whole = cv2.imencode(".jpg", grace_hopper)[1].tobytes()
    (tmp_path / "b.jpg").write_bytes(whole[: len(whole) // 3])
    cv2.imwrite(str(tmp_path / "c.png"), grace_hopper)
    src = ImageFolderSource(tmp_path, realtime=False, loop=True)
    frames = _drain(src, limit=4)
    assert [f.shape for f in frames] == [astronaut.shape, grace_hopper.shape] * 2
    assert np.array_equal(frames[1], grace_hopper)
    err = capfd.readouterr().err
    assert err.count("b.jpg is truncated") == 1 and "Premature end" not in err
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    assert _drain(ImageFolderSource(tmp_path, realtime=False, loop=True)) == []  # nothing usable: ends, no spin


def _ffmpeg(*args: str) -> None:
    import subprocess

    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", *args], check=True)


def test_a_truncated_video_says_truncated(astronaut_video, tmp_path, capfd):
    """An MP4 cut short: without its index it is named truncated; with the index first it plays to where it was
    cut and says it ended early."""
    whole = tmp_path / "whole.mp4"
    _ffmpeg("-i", str(astronaut_video), "-c:v", "libx264", "-g", "5", "-pix_fmt", "yuv420p", str(whole))
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match="truncated") as info:
        VideoFileSource(cut)
    assert "\n" not in str(info.value)
    faststart = tmp_path / "faststart.mp4"
    _ffmpeg("-i", str(whole), "-c", "copy", "-movflags", "+faststart", str(faststart))
    data = faststart.read_bytes()
    cut.write_bytes(data[: len(data) * 6 // 10])
    src = VideoFileSource(cut, realtime=False)
    frames = _drain(src)
    assert 0 < len(frames) < src.frame_count == 40 and src.cut_short_at == len(frames)
    assert f"ended after {len(frames)} of its 40 frames" in capfd.readouterr().err
    src = VideoFileSource(whole, realtime=False)
    assert len(_drain(src)) == 40 and src.cut_short_at is None


def test_demo_source_is_finite_moving_and_has_a_face(still_landmarker):
    demo = DemoSource(fps=30, seconds=1.0, realtime=False)
    frames = _drain(demo)
    assert len(frames) == 30 and frames[0].shape == (480, 640, 3) and frames[0].dtype == np.uint8
    assert np.abs(frames[0].astype(int) - frames[15]).mean() > 1.0  # the head moves
    for f in (frames[0], frames[15], frames[29]):
        assert len(still_landmarker.detect(f)) == 1
    looped = DemoSource(fps=30, seconds=0.2, realtime=False, loop=True)
    assert len(_drain(looped, limit=20)) == 20
    assert np.array_equal(DemoSource(realtime=False).frame_at(7), DemoSource(realtime=False).frame_at(7))


def test_missing_camera_lists_cameras_found():
    with pytest.raises(SourceError, match="Cameras found"):
        WebcamSource(97)


def test_open_source_dispatch_and_errors(astronaut_video, tmp_path):
    assert isinstance(open_source(str(astronaut_video), realtime=False), VideoFileSource)
    assert isinstance(open_source("demo"), DemoSource)
    with pytest.raises(SourceError, match="not 'demo'"):
        open_source(str(tmp_path / "nothing.mp4"))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(SourceError):
        VideoFileSource(bad)


def test_capture_thread_stamps_frames_in_order(astronaut_video):
    got = []
    done = threading.Event()
    cap = CaptureThread(VideoFileSource(astronaut_video, realtime=False), lambda f: got.append(f))
    cap.start()
    cap.join(timeout=30)
    done.set()
    assert cap.ended.is_set() and cap.error is None
    assert [f.seq for f in got] == list(range(40))
    times = [f.t_capture for f in got]
    assert all(b >= a for a, b in zip(times, times[1:]))
    assert got[10].t_source == pytest.approx(10 / 25)  # media time for a source read as fast as possible


def test_camera_that_disconnects_ends_or_reconnects(astronaut_video):
    """OpenCV opens a file path like a device: its end is a camera that stops delivering."""
    cam = WebcamSource(str(astronaut_video), width=None, height=None, fps=None, mjpg=False)
    assert len(_drain(cam, limit=100)) == 40  # stops cleanly at the 'disconnect'
    cam.close()
    again = WebcamSource(str(astronaut_video), width=None, height=None, fps=None, mjpg=False, reconnect=True,
                         reconnect_timeout_s=5.0)
    frames = _drain(again, limit=45)
    again.close()
    assert len(frames) == 45 and np.array_equal(frames[40], frames[0])  # reopened and went on
