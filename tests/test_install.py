"""The environment holds exactly one OpenCV and exactly one ONNX Runtime distribution.

opencv-python/-headless beside opencv-contrib-python overwrite the same cv2/ files (and break it on
uninstall); onnxruntime and onnxruntime-gpu overwrite each other.
"""

import importlib.metadata as md
import subprocess
import sys


def _installed(names: set[str]) -> list[str]:
    found = set()
    for dist in md.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name in names:
            found.add(name)
    return sorted(found)


def test_exactly_one_opencv_distribution():
    cv = _installed({"opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless"})
    assert cv == ["opencv-contrib-python"], cv


def test_exactly_one_onnxruntime_distribution():
    ort = _installed({"onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino"})
    assert len(ort) == 1, ort


def test_swapcam_command_lists_its_subcommands():
    out = subprocess.run([sys.executable, "-m", "swapcam", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("extract", "train", "export", "live", "bench", "eval", "verify"):
        assert f"  {command}" in out
    bad = subprocess.run([sys.executable, "-m", "swapcam", "frobnicate"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown command" in bad.stderr
