"""`python run_live.py` / `swapcam live` as a user runs it: real processes, real files, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from tests.fixtures.live_process import start_live_recording

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, str(REPO / "run_live.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_help_lists_every_option(tmp_path):
    res = _run(["--help"], tmp_path)
    assert res.returncode == 0
    for option in ("--model", "--source", "--sink", "--output", "--vcam-format", "--no-smoothing", "--color",
                   "--erode", "--blur", "--opacity", "--hull", "--largest-only", "--unpaced", "--loop",
                   "--side-by-side", "--max-frames", "--reconnect", "--crop-scale", "--face-type", "--occlusion",
                   "--occlusion-model"):
        assert option in res.stdout, option


def test_bad_inputs_exit_non_zero_with_a_clear_message(tmp_path, exported_model):
    res = _run(["--model", str(tmp_path / "nope.onnx")], tmp_path)
    assert res.returncode == 2 and "model file not found" in res.stderr and "nope.onnx" in res.stderr
    junk = tmp_path / "junk.onnx"
    junk.write_text("hello")
    res = _run(["--model", str(junk)], tmp_path)
    assert res.returncode == 2 and "not an ONNX model" in res.stderr
    res = _run(["--model", str(exported_model), "--source", "7", "--sink", "null"], tmp_path)
    assert res.returncode == 2 and "camera 7 does not open" in res.stderr and "Cameras found" in res.stderr
    res = _run(["--model", str(exported_model), "--source", str(tmp_path / "missing.mp4")], tmp_path)
    assert res.returncode == 2 and "missing.mp4" in res.stderr
    res = _run(["--model", str(exported_model), "--crop-scale", "5", "--sink", "null"], tmp_path)
    assert res.returncode == 2 and "--crop-scale: crop scale 5" in res.stderr
    res = _run(["--model", str(exported_model), "--occlusion-model", str(tmp_path / "none.onnx"), "--sink", "null"],
               tmp_path)
    assert res.returncode == 2 and "occlusion model not found" in res.stderr and "--occlusion off" in res.stderr


def test_missing_default_model_says_how_to_get_one(tmp_path):
    if (REPO / "models" / "demo.onnx").exists():
        pytest.skip("the demo model is present")
    res = _run([], tmp_path)
    assert res.returncode == 2 and "models/demo.onnx is missing" in res.stderr and "--model" in res.stderr


def test_video_to_file_with_side_by_side_and_stats(tmp_path, exported_model, astronaut_video):
    out, still, stats = tmp_path / "out.mp4", tmp_path / "pair.png", tmp_path / "stats.json"
    res = _run(["--model", str(exported_model), "--source", str(astronaut_video), "--unpaced", "--sink", "file",
                "--output", str(out), "--side-by-side", str(still), "--side-by-side-frame", "5",
                "--stats-json", str(stats)], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "providers in use: " in res.stdout and "CPUExecutionProvider" in res.stdout
    assert "occlusion: on, occlusion model occlusion.onnx" in res.stdout
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 40
    cap.release()
    img = cv2.imread(str(still))
    assert img.shape == (480, 1280, 3)
    figures = json.loads(stats.read_text())
    assert figures["frames_out"] == 40 and figures["stage_ms_mean"]["swap"] > 0 and figures["latency_p95_ms"] > 0
    assert figures["stage_ms_mean"]["occlusion"] > 0


def test_headless_defaults_pick_the_demo_source_and_a_file(tmp_path, exported_model):
    """No camera, no virtual camera, no display (this machine): demo source into ./swapcam_output.mp4,
    and each choice is explained with the option that changes it."""
    res = _run(["--model", str(exported_model), "--demo-seconds", "1", "--unpaced"], tmp_path)
    assert res.returncode == 0, res.stderr
    if "source: built-in demo" not in res.stdout:
        pytest.skip("a webcam is present on this machine")
    assert "--source" in res.stdout
    if "output: video file" not in res.stdout:
        pytest.skip("a virtual camera is present on this machine")
    assert "--sink" in res.stdout
    if sys.platform == "linux":
        assert "modprobe v4l2loopback" in res.stdout
    assert (tmp_path / "swapcam_output.mp4").exists()
    assert "wrote swapcam_output.mp4" in res.stdout


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_ctrl_c_and_sigterm_stop_cleanly_with_the_file_intact(tmp_path, exported_model, sig):
    import signal

    out = tmp_path / "stopped.mp4"
    proc = start_live_recording(out, exported_model, tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
    try:
        for line in proc.stdout:
            if "running" in line:
                break
        import time

        deadline = time.time() + 60
        while not (out.exists() and out.stat().st_size > 0) and time.time() < deadline:
            time.sleep(0.2)  # recording: written under its own name from the first fragment on
        time.sleep(1.0)
        proc.send_signal(getattr(signal, sig))
        rest = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "ended by interrupt" in rest
    assert out.exists() and not list(tmp_path.glob("*partial*"))
    cap = cv2.VideoCapture(str(out))
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert frames > 0


CHATTER = ("W0000", "inference_feedback_manager", "Feedback manager", "absl::InitializeLog", "XNNPACK",
           "h264_v4l2m2m", "Could not find a valid device", "can't configure encoder")


def test_a_run_to_a_file_prints_no_library_chatter(tmp_path, exported_model, astronaut_video):
    """Issue 13: MediaPipe's start-up lines and FFmpeg's H.264 hardware-encoder probe stay out of the terminal;
    what is left on stderr is nothing at all for a clean run."""
    out = tmp_path / "clean.mp4"
    res = _run(["--model", str(exported_model), "--source", str(astronaut_video), "--unpaced", "--max-frames", "10",
                "--sink", "file", "--output", str(out)], tmp_path)
    assert res.returncode == 0, res.stderr
    for text in CHATTER:
        assert text not in res.stderr and text not in res.stdout, text
    assert res.stderr.strip() == ""
    assert out.exists() and "frames out 10" in res.stdout


def test_real_errors_still_reach_stderr(tmp_path, exported_model, astronaut_video):
    res = _run(["--model", str(exported_model), "--source", str(astronaut_video), "--sink", "file",
                "--output", str(tmp_path / "x.mp4"), "--color", "sepia"], tmp_path)
    assert res.returncode == 2 and "invalid choice: 'sepia'" in res.stderr
