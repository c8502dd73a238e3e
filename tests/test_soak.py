"""The soak benchmark: its analysis on known samples, and a short real run through `swapcam bench --soak`."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from measure.soak import SoakError, SoakOptions, analyse


def _samples(minutes: float, rss, p95, every_s: float = 10.0) -> list[dict]:
    t = np.arange(0, minutes * 60 + 1e-9, every_s)
    return [{"t_s": float(x), "rss_mb": float(rss(x)), "latency_p95_ms": float(p95(x)), "latency_p50_ms": 1.0,
             "frames": int(x * 30), "fps": 30.0, "load_1min": 1.0} for x in t]


def test_steady_run_meets_the_goals_and_a_leak_does_not():
    steady = analyse(_samples(30, lambda t: 300 + (50 if t < 60 else 0), lambda t: 25.0), 120, 300)
    assert steady["memory_growth_mb"] == pytest.approx(0) and steady["p95_drift"] == pytest.approx(0)
    assert steady["memory_ok"] and steady["p95_ok"]
    # 1.2 MB a minute (what issue 13 measured) over the 25 minutes between the windows' medians
    leak = analyse(_samples(30, lambda t: 300 + 1.2 * t / 60, lambda t: 25.0 * (1 + t / 3600)), 120, 300)
    first_mid, last_mid = np.median(np.arange(120, 420, 10)) / 60, np.median(np.arange(1510, 1801, 10)) / 60
    assert leak["memory_growth_mb"] == pytest.approx(1.2 * (last_mid - first_mid), abs=1e-6)
    assert leak["memory_slope_mb_per_hour"] == pytest.approx(72, rel=1e-6)
    assert not leak["memory_ok"] and not leak["p95_ok"]
    assert leak["p95_drift"] == pytest.approx((1 + 60 * last_mid / 3600) / (1 + 60 * first_mid / 3600) - 1, rel=1e-6)


def test_warmup_is_not_counted():
    # memory grows only during the first two minutes (model and allocator warm-up)
    result = analyse(_samples(12, lambda t: 300 + min(t, 120) / 10, lambda t: 25.0), 120, 120)
    assert result["memory_growth_mb"] == pytest.approx(0) and result["memory_ok"]


def test_too_short_a_soak_is_refused():
    with pytest.raises(SoakError, match="too short"):
        SoakOptions(minutes=1, sample_s=10).check()
    SoakOptions(minutes=30).check()


@pytest.mark.slow
def test_short_soak_through_the_cli_writes_its_report(exported_model, tmp_path, capsys):
    from swapcam.cli import main

    out = tmp_path / "soak"
    code = main(["bench", "demo", "--model", str(exported_model), "--soak", "0.4", "--soak-sample", "2",
                 "--soak-warmup", "0.05", "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "soak.json").read_text())
    assert report["model"] == str(exported_model)
    assert report["run"]["ended_by"] == "stopped" and report["run"]["frames_out"] > 0
    samples = report["samples"]
    assert samples[-1]["t_s"] >= 24 - 2 and all(s["rss_mb"] > 0 for s in samples)
    assert [s["frames"] for s in samples] == sorted(s["frames"] for s in samples)
    for key in ("memory_growth_mb", "memory_slope_mb_per_hour", "p95_drift", "memory_ok", "p95_ok"):
        assert key in report["result"]
    assert cv2.imread(str(out / "soak.png")) is not None
    printed = capsys.readouterr().out
    assert "memory after" in printed and "drift" in printed


@pytest.mark.slow
def test_soak_runs_the_one_photo_swap_of_make_live(tmp_path, capsys):
    """The default swap of `make live` (a photo) is soaked like any model, not refused as 'not an ONNX model'."""
    from swapcam.cli import main

    photo = Path(__file__).resolve().parents[1] / "models" / "photos" / "london_063.jpg"
    out = tmp_path / "soak"
    code = main(["bench", "demo", "--model", str(photo), "--soak", "0.2", "--soak-sample", "1",
                 "--soak-warmup", "0.02", "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "soak.json").read_text())
    assert report["provider"] == "OpenCV remap (CPU)" and report["run"]["frames_out"] > 0
    assert report["samples"][-1]["t_s"] >= 12 - 1


def test_soak_without_a_model_is_a_clear_error(tmp_path, capsys):
    from swapcam.cli import main

    assert main(["bench", "demo", "--soak", "30", "--model", str(tmp_path / "none.onnx"), "--out", str(tmp_path)]) == 2
    assert "give an existing model" in capsys.readouterr().err
