"""`swapcam verify` and the marks of `swapcam live` as a user sees them: real processes, files, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from realtime.marking.marker import Label, OutputMarker
from swapcam.cli import main as swapcam

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def marked_and_plain(tmp_path_factory, astronaut):
    folder = tmp_path_factory.mktemp("verify")
    plain = folder / "plain.png"
    marked = folder / "marked.png"
    cv2.imwrite(str(plain), astronaut)
    cv2.imwrite(str(marked), OutputMarker(bytes.fromhex("5ca1ab1e"))(astronaut.copy()))
    return marked, plain


def test_verify_exit_codes(marked_and_plain, tmp_path, capsys):
    marked, plain = marked_and_plain
    assert swapcam(["verify", str(marked)]) == 0
    out = capsys.readouterr().out
    assert "FOUND swapcam watermark" in out and "5ca1ab1e" in out and "sync z" in out and "1 of 1" in out
    assert swapcam(["verify", str(plain)]) == 1
    assert "NOT FOUND" in capsys.readouterr().out
    assert swapcam(["verify", str(marked), str(plain)]) == 1  # one input without the mark
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all")
    assert swapcam(["verify", str(junk)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "junk.mp4" in err and "not a readable video" in err
    assert swapcam(["verify", str(tmp_path / "missing.png")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_verify_a_folder_and_json(marked_and_plain, tmp_path, capsys):
    marked, _ = marked_and_plain
    folder = tmp_path / "shots"
    folder.mkdir()
    (folder / "a.png").write_bytes(marked.read_bytes())
    (folder / "notes.txt").write_text("ignored")
    report = tmp_path / "v.json"
    assert swapcam(["verify", str(folder), "--json", str(report)]) == 0
    data = json.loads(report.read_text())
    assert [d["found"] for d in data] == [True] and data[0]["fingerprint"] == "5ca1ab1e"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert swapcam(["verify", str(empty)]) == 2


def test_a_mark_too_faint_for_any_window_is_found_in_the_whole_clip(tmp_path, astronaut):
    """Every window alone is too weak (a faint mark under heavy noise, content moving): the mark is static,
    so the average of all windows still shows it, and verify says that is where it was found."""
    from realtime.frames.recorder import VideoFileSink
    from realtime.marking.watermark import Payload, Watermarker
    from swapcam.verify_cli import verify_file

    base = cv2.resize(astronaut, (640, 360))
    rng = np.random.default_rng(5)
    payload = Payload.now(bytes.fromhex("5ca1ab1e"))
    marker = Watermarker(payload, amplitude=1)
    sink = VideoFileSink(tmp_path / "faint.mp4", fps=25, live=False, crf=12)
    for _ in range(200):
        frame = marker.embed(np.ascontiguousarray(np.roll(base, (int(rng.integers(0, 360)), int(rng.integers(0, 640))),
                                                          axis=(0, 1))))
        sink.write(np.clip(frame + rng.normal(0, 110, frame.shape[:2])[:, :, None], 0, 255).astype(np.uint8))
    sink.close()
    verdict = verify_file(tmp_path / "faint.mp4", window_s=0.5)
    assert verdict.found and verdict.payload == payload and verdict.windows > 10 and verdict.windows_agreeing == 0
    assert "found in the average of all" in verdict.line()


def _live(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = str(REPO)
    env["SWAPCAM_CONFIG_DIR"] = str(cwd / "config")  # the C2PA key is made here, not in the user's home
    return subprocess.run([sys.executable, str(REPO / "run_live.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _badge_difference(pair_png: Path) -> float:
    """Mean |swapped - input| over the label's box in a side-by-side still (input | swapped)."""
    pair = cv2.imread(str(pair_png))
    w = pair.shape[1] // 2
    left, right = pair[:, :w], pair[:, w:]
    x0, y0, x1, y1 = Label().box(left.shape)
    return float(np.abs(right[y0:y1, x0:x1].astype(int) - left[y0:y1, x0:x1]).mean())


def test_live_output_is_labelled_watermarked_and_credentialed(exported_model, astronaut_video, tmp_path):
    out, still = tmp_path / "out.mp4", tmp_path / "pair.png"
    res = _live(["--model", str(exported_model), "--source", str(astronaut_video), "--unpaced", "--sink", "file",
                 "--output", str(out), "--side-by-side", str(still), "--side-by-side-frame", "3"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "identity astronaut; consent: public-domain" in res.stdout and "watermark fingerprint" in res.stdout
    assert "warning" not in res.stderr
    assert _badge_difference(still) > 40  # the badge is there (darkened box, white text)
    assert swapcam(["verify", str(out)]) == 0
    from realtime.marking.content_credentials import read_credentials

    creds = read_credentials(out)
    assert creds is not None and creds["model"]["identity"] == "astronaut"
    assert creds["digital_source_type"][0].endswith("trainedAlgorithmicMedia")
    assert "self-signed" in creds["signer"]


def test_no_label_removes_the_badge_and_a_model_without_consent_is_named(exported_model, astronaut_video, tmp_path):
    bare = tmp_path / "bare.dfm"
    proto = onnx.load(str(exported_model))
    del proto.metadata_props[:]
    onnx.save(proto, str(bare))
    still = tmp_path / "pair.png"
    res = _live(["--model", str(bare), "--source", str(astronaut_video), "--unpaced", "--sink", "null", "--no-label",
                 "--side-by-side", str(still), "--side-by-side-frame", "3", "--max-frames", "8"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "bare.dfm records no identity and no consent record" in res.stderr
    assert _badge_difference(still) < 3  # only the invisible mark differs


def test_help_says_why_the_label_exists(tmp_path):
    res = _live(["--help"], tmp_path)
    assert res.returncode == 0 and "--no-label" in res.stdout and "know it is synthetic" in " ".join(res.stdout.split())
