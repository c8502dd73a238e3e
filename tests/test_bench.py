"""`swapcam bench`: the real pipeline on a real clip with our exported model; the pixel stamp; options."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from measure.bench import BenchConfig, BenchError, expand_configs, parse_compare, parse_pace
from measure.bench_stamp import FrameStore, StampClock, StampedSource, StampReaderSink, read_stamp, write_stamp
from realtime.pipeline import STAGES, PassThrough, Pipeline
from realtime.frames.sinks import NullSink


def test_stamp_round_trips_and_survives_a_resize(astronaut):
    frame = cv2.resize(astronaut, (360, 288))
    assert read_stamp(frame) is None  # a plain picture holds no code
    for number in (0, 1, 777, 65535, 65536 + 5):
        stamped = frame.copy()
        write_stamp(stamped, number)
        assert read_stamp(stamped) == number % 65536
        there_and_back = cv2.resize(cv2.resize(stamped, (720, 576)), (360, 288), interpolation=cv2.INTER_AREA)
        assert read_stamp(there_and_back) == number % 65536
    damaged = frame.copy()
    write_stamp(damaged, 1234)
    b = damaged.shape[1] // 80
    damaged[2:2 + b, 2 + 5 * b:2 + 6 * b] = 255 - damaged[2:2 + b, 2 + 5 * b:2 + 6 * b]  # flip one bit
    assert read_stamp(damaged) is None


def test_frame_store_plays_ping_pong():
    store = FrameStore([np.full((2, 2, 3), i, np.uint8) for i in range(4)])
    assert [int(store.next()[0, 0, 0]) for _ in range(9)] == [0, 1, 2, 3, 2, 1, 0, 1, 2]


def test_stamped_latency_through_the_real_pipeline_counts_every_frame(astronaut_video):
    from measure.bench import load_frames

    frames = load_frames(str(astronaut_video), 10)
    clock = StampClock()
    source = StampedSource(FrameStore(frames), clock, 60.0)
    stats = Pipeline(source, PassThrough(), [StampReaderSink(NullSink(), clock)], record_frames=True).run(max_frames=20)
    assert stats.frames_out == 20 and clock.unreadable == 0
    assert len(clock.latency_ms) == 20
    # the stamp's clock and the pipeline's agree on a pass-through loop (both well under a frame)
    assert 0 < np.median(clock.latency_ms) < 1000 / 60
    assert abs(np.median(clock.latency_ms) - np.median(stats.latency_ms)) < 5


def test_configurations_are_every_combination_named_by_what_varies():
    base = BenchConfig(model="m.onnx")
    configs = expand_configs(base, [parse_compare("pace=30,fast"), parse_compare("color=none,rct"),
                                    parse_compare("threads=1")])
    assert [c.name for c in configs] == ["30fps color=none", "30fps color=rct", "fast color=none", "fast color=rct"]
    assert [c.pace for c in configs] == [30.0, 30.0, None, None]
    assert all(c.threads == 1 for c in configs)
    with pytest.raises(BenchError, match="unknown key"):
        parse_compare("colour=rct")
    with pytest.raises(BenchError, match="KEY=VALUE"):
        parse_compare("color")
    with pytest.raises(BenchError, match="frame rate"):
        parse_pace("quick")
    with pytest.raises(ValueError):
        expand_configs(base, [parse_compare("color=none,sepia")])
    on, off = expand_configs(base, [parse_compare("occlusion=on,off")])
    assert (on.occlusion, off.occlusion, on.name) == (True, False, "occlusion=on")


def test_bench_on_a_short_clip_writes_every_field_and_a_readable_png(astronaut_video, exported_model, tmp_path, capsys):
    from swapcam.cli import main

    out = tmp_path / "bench"
    code = main(["bench", str(astronaut_video), "--model", str(exported_model), "--pace", "30,fast",
                 "--frames", "30", "--warmup", "5", "--chunk", "15", "--model-only-runs", "15",
                 "--out", str(out), "--markdown", "--no-progress"])
    assert code == 0
    report = json.loads((out / "bench.json").read_text())
    machine = report["machine"]
    assert machine["cores_usable"] >= 1 and machine["cpu"] and machine["ram_gib"]
    assert set(machine["versions"]) == {"python", "numpy", "opencv", "onnxruntime", "mediapipe"}
    assert all(machine["versions"].values())
    assert [r["name"] for r in report["runs"]] == ["30fps", "fast"]
    for run in report["runs"]:
        assert run["frames_out"] == 30 and run["frames_captured"] >= 30
        assert run["faces_per_frame"] == 1.0  # the face was found and swapped in every frame
        assert set(run["stages_ms"]) == set(STAGES)
        for stage in STAGES:
            s = run["stages_ms"][stage]
            assert s["count"] == 30 and 0 <= s["p50"] <= s["p95"] <= s["p99"]
        assert run["stages_ms"]["swap"]["p50"] > 0 and run["stages_ms"]["landmarks"]["p50"] > 0
        assert run["config"]["mark"] and run["stages_ms"]["mark"]["p50"] > 0  # output marking, as live runs it
        lat, e2e = run["latency_ms"], run["e2e_latency_ms"]
        assert e2e["count"] == 30 and run["e2e_unreadable_frames"] == 0
        assert e2e["p50"] >= run["stages_ms"]["swap"]["p50"]  # latency includes at least the swap
        assert abs(e2e["p50"] - lat["p50"]) < 25  # the two clocks agree
        assert run["fps"] > 0 and run["dropped"]["total"] == sum(v for k, v in run["dropped"].items() if k != "total")
        assert run["cpu"]["process_percent"] > 0 and run["memory"]["rss_peak_mb_after_setup"] > 0
        assert run["provider"] == "CPUExecutionProvider" and run["split_used"] in (True, False)
        assert run["pipelining"] in ("serial", "split", "adaptive")
        # the ratio is reported, not bounded: it compares two timings, and a busy machine can put either anywhere
        assert run["model_only"]["fps"] > 0 and run["pipeline_over_model_only"] > 0
        assert len(run["latency_ms_samples"]) == 30
    fast = report["runs"][1]
    assert fast["dropped"]["total"] == 0  # as fast as possible: every frame processed, none dropped
    png = cv2.imread(str(out / "bench.png"))
    assert png is not None and png.shape[0] > 300 and png.shape[1] > 800
    table = (out / "bench.md").read_text()
    assert "| 30fps | CPU |" in table and "| fast | CPU |" in table and "Machine:" in table
    assert "mark ms (p50)" in table
    assert "pipeline / model-only" in capsys.readouterr().out


def test_bench_refuses_a_missing_model_and_a_bad_source(astronaut_video, tmp_path, capsys):
    from swapcam.cli import main

    assert main(["bench", str(astronaut_video), "--model", str(tmp_path / "none.onnx"), "--no-progress"]) == 1
    assert "none.onnx" in capsys.readouterr().err
    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"not onnx")
    assert main(["bench", str(tmp_path / "no_video.mp4"), "--model", str(bogus), "--no-progress"]) == 1
    assert "no_video.mp4" in capsys.readouterr().err
    assert main(["bench", str(astronaut_video), "--model", str(bogus), "--frames", "4", "--warmup", "0",
                 "--no-progress"]) == 1
    assert "model.onnx" in capsys.readouterr().err
    assert main(["bench", str(astronaut_video), "--model", str(bogus), "--pace", "quick", "--no-progress"]) == 1
    assert "quick" in capsys.readouterr().err


def test_the_preview_window_is_a_configuration_it_measures(astronaut_video, tmp_path):
    """--compare preview=off,on: the app's preview (Qt, offscreen here) fed every output frame in one of them."""
    import os

    pytest.importorskip("PySide6")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from swapcam.cli import main

    photo = Path(__file__).resolve().parents[1] / "models" / "photos" / "london_063.jpg"
    out = tmp_path / "bench"
    code = main(["bench", str(astronaut_video), "--model", str(photo), "--pace", "fast", "--compare",
                 "preview=off,on", "--frames", "20", "--warmup", "4", "--chunk", "10", "--model-only-runs", "3",
                 "--out", str(out), "--no-progress"])
    assert code == 0
    off, on = json.loads((out / "bench.json").read_text())["runs"]
    assert (off["name"], on["name"]) == ("preview=off", "preview=on")
    assert off["preview_frames_shown"] is None and 0 < on["preview_frames_shown"] <= on["frames_out"] == 20
    assert on["dropped"]["total"] == 0  # read as fast as possible: the preview never holds a frame back
