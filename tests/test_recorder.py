"""Recordings (realtime/frames/recorder.py) as a user meets them: real ffmpeg, real files, real processes
killed with SIGKILL, a real full file system.

The recording process of the kill and disk-full tests is ``python -m measure.recording_bench --child``:
the demo source at 1280x720, a frame number stamped into each frame, paced at 30 fps into
``VideoFileSink``; it prints each frame's number once the recorder has it.
"""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from measure.bench_stamp import read_stamp, write_stamp
from measure.recording_bench import FPS, decode, demo_frames, kill_run, psnr, start_child
from realtime.frames.recorder import RecordingError, VideoFileSink, trim_torn_tail
from tests.fixtures.live_process import start_live_recording

REPO = Path(__file__).resolve().parents[1]


def _top_level_boxes(path: Path) -> list[bytes]:
    data, boxes, offset = path.read_bytes(), [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8:offset + 16])[0]
        boxes.append(kind)
        if size < 8:
            break
        offset += size
    return boxes


@pytest.fixture(scope="module")
def frames():
    """45 stamped 1280x720 frames of the moving demo astronaut."""
    out = []
    for i, frame in enumerate(demo_frames(45)):
        write_stamp(frame, i)
        out.append(frame)
    return out


def test_a_stopped_recording_is_an_ordinary_h264_mp4_that_players_open_and_c2pa_signs(frames, tmp_path):
    path = tmp_path / "rec.mp4"
    sink = VideoFileSink(path, fps=FPS, live=False)
    for f in frames:
        sink.write(f)
    assert path.exists()  # written under the user's name from the start: nothing to rename
    sink.close()
    assert sink.error is None and sink.written == len(frames) and sink.dropped == 0
    assert os.listdir(tmp_path) == ["rec.mp4"]
    boxes = _top_level_boxes(path)
    assert b"moov" in boxes and b"mdat" in boxes and b"moof" not in boxes  # finalised: not fragmented any more
    decoded, errors = decode(path)
    assert errors == "" and [read_stamp(f) for f in decoded] == list(range(len(frames)))
    assert min(psnr(d, f) for d, f in zip(decoded, frames)) > 38.0
    cap = cv2.VideoCapture(str(path))  # another FFmpeg (OpenCV's) reads it as well
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(frames) and cap.read()[0]
    assert cap.getBackendName() == "FFMPEG" and int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little") in (b"avc1", b"h264")
    cap.release()
    assert "H.264" in sink.describe() and "CRF" in sink.describe()

    from realtime.marking.content_credentials import read_credentials, sign_video
    from realtime.marking.marker import Provenance

    os.environ.setdefault("SWAPCAM_CONFIG_DIR", str(tmp_path / "config"))
    sign_video(path, Provenance(None, "astronaut", "public-domain test", bytes.fromhex("5ca1ab1e")),
               folder=tmp_path / "keys")
    creds = read_credentials(path)
    assert creds is not None and creds["model"]["fingerprint_sha256_prefix"] == "5ca1ab1e"
    assert len(decode(path)[0]) == len(frames)


def test_live_writes_never_wait_for_a_stalled_encoder(frames, tmp_path):
    """ffmpeg stopped (SIGSTOP): the queue fills, then frames are dropped from the recording, and write()
    keeps returning; once ffmpeg runs again the file is finished with what was queued."""
    messages = []
    sink = VideoFileSink(tmp_path / "stall.mp4", fps=FPS, on_error=messages.append)
    sink.write(frames[0])
    deadline = time.time() + 30
    while sink._proc is None and time.time() < deadline:  # started by the writer thread
        time.sleep(0.01)
    os.kill(sink._proc.pid, signal.SIGSTOP)
    try:
        for i in range(300):
            sink.write(frames[i % len(frames)])
    finally:
        os.kill(sink._proc.pid, signal.SIGCONT)
    sink.close()
    assert sink.frames == 301 and sink.dropped > 0 and sink.written == 301 - sink.dropped
    assert sink.error is None and len(messages) == 1 and "frames were left out" in messages[0]
    assert len(decode(tmp_path / "stall.mp4")[0]) == sink.written


def test_bad_file_types_and_codecs_are_refused_in_one_line(tmp_path):
    with pytest.raises(RecordingError, match=r"\.mp4, \.m4v, \.mov or \.mkv"):
        VideoFileSink(tmp_path / "x.avi")
    with pytest.raises(RecordingError, match="unknown codec"):
        VideoFileSink(tmp_path / "x.mp4", codec="xyz")


def test_matroska_and_mpeg4_part2_are_written_too(frames, tmp_path):
    for name, codec in (("rec.mkv", None), ("old.mp4", "mp4v")):
        sink = VideoFileSink(tmp_path / name, fps=FPS, codec=codec, live=False)
        for f in frames[:10]:
            sink.write(f)
        sink.close()
        decoded, errors = decode(tmp_path / name)
        assert errors == "" and [read_stamp(f) for f in decoded] == list(range(10)), name


def test_a_removed_folder_is_said_and_what_was_written_is_saved(frames, tmp_path):
    folder = tmp_path / "session" / "takes"
    messages = []
    sink = VideoFileSink(folder / "take1.mp4", fps=FPS, live=False, on_error=messages.append)
    for f in frames[:30]:
        sink.write(f)
    shutil.rmtree(tmp_path / "session")
    for f in frames[30:]:
        sink.write(f)  # the live loop goes on; nothing raises
    sink.close()
    rescued = tmp_path / "take1.rescued.mp4"  # the nearest folder that still exists
    assert sink.error and "removed while recording" in sink.error
    assert len(messages) == 1 and str(rescued) in messages[0] and "recording stopped" in messages[0]
    decoded, errors = decode(rescued)
    assert errors == "" and [read_stamp(f) for f in decoded] == list(range(len(frames)))


def test_a_torn_last_fragment_is_cut_off(tmp_path):
    path = tmp_path / "killed.mp4"
    result = kill_run(path, kill_after=40)
    size = path.stat().st_size
    with open(path, "ab") as fh:  # half a fragment, as a kill in the middle of its write leaves
        fh.write(struct.pack(">I4s", 4000, b"moof") + bytes(100))
    fd = os.open(path, os.O_RDWR)
    try:
        assert trim_torn_tail(fd) == size
        assert trim_torn_tail(fd) is None  # nothing more to cut
    finally:
        os.close(fd)
    assert len(decode(path)[0]) == result["decoded"]


@pytest.mark.parametrize("kill_after", [45, 150])
def test_kill_9_of_a_recording_process_leaves_a_file_that_plays_up_to_the_last_second(tmp_path, kill_after):
    """The recording process and its ffmpeg are killed together (SIGKILL to the process group, as a power
    cut would) after ``kill_after`` frames: the file plays, frames 0, 1, 2, ... in order, and holds every
    frame but those of the last second at most. The kill waits for the file's first fragment: the encoder's
    start-up (~0.5 s here when the machine is quiet, over 1.5 s at load 15 on 2 cores: the README's kill table)
    is the one moment a kill leaves no frame."""
    path = tmp_path / "rec.mp4"
    r = kill_run(path, kill_after, fragment_first=True)
    assert r["handed"] >= kill_after
    assert r["ffmpeg_errors"] == "" and r["unreadable_stamps"] == 0 and r["increasing"]
    assert r["decoded"] >= kill_after - FPS and r["lost"] <= FPS, r
    assert r["missing_before_last"] <= 1, r  # at most the B-frame just before the last frame
    assert [p.name for p in tmp_path.iterdir()] == ["rec.mp4"]


def _run_in_small_filesystem(folder: Path, kilobytes: int, child: list[str]) -> tuple[subprocess.CompletedProcess, str]:
    """Run ``child`` with ``folder`` a ``kilobytes`` kB tmpfs (a private mount namespace: ``unshare``,
    root or an unprivileged user namespace) and copy the recording out; else under RLIMIT_FSIZE."""
    inner = folder / "mnt"
    inner.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rm", "true"], capture_output=True).returncode == 0:
        script = (f'mount -t tmpfs -o size={kilobytes}k tmpfs "{inner}" && "$@"; rc=$?; '
                  f'cp "{inner}/rec.mp4" "{folder}/rec.mp4"; exit $rc')
        return subprocess.run([unshare, "-rm", "sh", "-c", script, "sh", *child], capture_output=True, text=True,
                              cwd=REPO, env=env, timeout=120), "tmpfs"
    if sys.platform == "win32":
        pytest.skip("no way to fill a file system here")
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (kilobytes * 1024, kilobytes * 1024))

    res = subprocess.run(child, capture_output=True, text=True, cwd=REPO, env=env, timeout=120, preexec_fn=limit)
    shutil.copy(inner / "rec.mp4", folder / "rec.mp4")
    return res, "RLIMIT_FSIZE"


def test_a_full_disk_stops_the_recording_with_a_message_and_the_live_loop_goes_on(tmp_path):
    child = [sys.executable, "-m", "measure.recording_bench", "--child", str(tmp_path / "mnt" / "rec.mp4"),
             "--seconds", "8"]
    res, how = _run_in_small_filesystem(tmp_path, 160, child)
    lines = res.stdout.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("ERROR")]
    assert res.returncode == 0, res.stderr
    assert len(errors) == 1, res.stdout[-2000:]
    message = lines[errors[0]]
    assert "recording stopped" in message and "plays" in message
    assert ("disk is full" in message and "No space left on device" in message) if how == "tmpfs" else \
        ("size limit" in message)
    after = [line for line in lines[errors[0] + 1:] if line.split()[0].isdigit()]
    assert len(after) > 30 and lines[-1].startswith("CLOSED")  # the loop ran on to the end
    decoded, ffmpeg_errors = decode(tmp_path / "rec.mp4")
    stamps = [read_stamp(f) for f in decoded]
    assert ffmpeg_errors == "" and len(decoded) > 30 and stamps == list(range(len(decoded)))


@pytest.mark.slow
def test_kill_9_of_swapcam_live_recording_leaves_a_watermarked_file_under_its_name(tmp_path, exported_model):
    out = tmp_path / "rec.mp4"
    proc = start_live_recording(out, exported_model, tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        deadline = time.time() + 120
        while (not out.exists() or out.stat().st_size < 150_000) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)  # ~3 s of video written
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert out.stat().st_size >= 150_000
    decoded, errors = decode(out, size=(640, 480))
    assert len(decoded) >= 30 and errors == ""
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".mp4"] == ["rec.mp4"]
    from swapcam.cli import main as swapcam

    assert swapcam(["verify", str(out)]) == 0  # a crash keeps the watermark too


def test_the_live_sessions_recording_is_this_recorder_and_says_what_happened(frames, tmp_path):
    """The app's and the control API's recordings (realtime/frames/outputs.py) go through VideoFileSink: a
    finished take is said and signed; a take whose folder vanished is an error event, its frames are rescued,
    it is not signed, and the outputs go on."""
    from realtime.frames.outputs import SessionOutputs
    from realtime.pipeline import FrameInfo

    events: list[tuple[str, str]] = []
    shown: list[int] = []
    folder = tmp_path / "takes"
    outputs = SessionOutputs([], preview=lambda frame, info: shown.append(info.seq),
                             say=lambda level, kind, message: events.append((level, message)),
                             fps=lambda: float(FPS), swapper=lambda: None, record=folder / "take1.mp4",
                             record_live=False)
    for i, f in enumerate(frames[:20]):
        outputs.write(f, FrameInfo(seq=i, t_capture=0.0, timings={}, faces=0))
    assert isinstance(outputs.recorder, VideoFileSink) and outputs.recorder.live is False
    shutil.rmtree(folder)
    outputs.set_record(tmp_path / "take2.mp4")  # the next take starts; the first is finished in a thread
    for i, f in enumerate(frames[20:30], start=20):
        outputs.write(f, FrameInfo(seq=i, t_capture=0.0, timings={}, faces=0))
    outputs.close()
    assert shown == list(range(30))
    errors = [m for level, m in events if level == "error"]
    assert len(errors) == 1 and "recording stopped" in errors[0] and "take1.rescued.mp4" in errors[0]
    decoded, problems = decode(tmp_path / "take1.rescued.mp4")
    assert problems == "" and [read_stamp(f) for f in decoded] == list(range(20))
    assert not any("take1" in m and "C2PA" in m for _, m in events)
    decoded, problems = decode(tmp_path / "take2.mp4")
    assert problems == "" and [read_stamp(f) for f in decoded] == list(range(20, 30))
    assert ("info", f"wrote {tmp_path / 'take2.mp4'}") in events
