"""Only the known library chatter is dropped from stderr; everything else written in the window comes out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from realtime.util.stderr_filter import without_chatter

REPO = Path(__file__).resolve().parents[1]
FEEDBACK = (b"W0000 00:00:1716224470.718558   20328 inference_feedback_manager.cc:114] Feedback manager requires a "
            b"model with a single signature inference. Disabling support for feedback tensors.\n")
ABSL = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
XNNPACK = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"


def test_only_the_known_lines_are_dropped():
    real = [b"E0000 00:00:1716224470.7 20328 calculator_graph.cc:887] INVALID_ARGUMENT: bad input\n",
            b"W0000 00:00:1716224470.7 20328 landmark_projection_calculator.cc:81] Using NORM_RECT without IMAGE_DIMENSIONS\n",
            b"Feedback manager requires a model with a single signature inference, quoted in a real error\n",
            b"no newline at the end"]
    data = XNNPACK + ABSL + FEEDBACK + real[0] + FEEDBACK + real[1] + real[2] + real[3]
    assert without_chatter(data) == b"".join(real)


def test_native_writes_in_the_window_come_out_filtered_and_in_order():
    """A child process writes to fd 2 directly (as C++ code does) and through Python, inside the window."""
    code = (
        "import os, sys\n"
        "from realtime.util.stderr_filter import drop_native_chatter\n"
        "os.write(2, b'before\\n')\n"
        "with drop_native_chatter():\n"
        f"    os.write(2, {XNNPACK!r} + {ABSL!r} + {FEEDBACK!r})\n"
        "    os.write(2, b'native error\\n')\n"
        "    print('python error', file=sys.stderr)\n"
        f"    os.write(2, {FEEDBACK!r})\n"
        "os.write(2, b'after\\n')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, timeout=60)
    assert res.returncode == 0
    assert res.stderr == b"before\nnative error\npython error\nafter\n"


def test_a_landmarker_prints_nothing(tmp_path):
    code = ("from realtime.face.landmarks import FaceLandmarker\n"
            "from skimage.data import astronaut\n"
            "import cv2\n"
            "for static in (False, True):\n"
            "    with FaceLandmarker(static_images=static) as lm:\n"
            "        assert len(lm.detect(cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))) == 1\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
