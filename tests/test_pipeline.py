"""The pipeline end to end: real videos through our exported model to a file and to pyvirtualcam's
Camera (a recording backend registered in the test), plus the one-slot queues and clean endings."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from realtime.frames.demo_source import DemoSource
from measure.evaluate import read_frames
from realtime.merging.merge import MergeSettings
from realtime.overlap import OverlapGovernor
from realtime.pipeline import STAGES, LatestSlot, PassThrough, Pipeline, choose_pipelining, split_pays_off
from realtime.processor import FaceSwapProcessor
from realtime.frames.sinks import CollectSink, VideoFileSink, VirtualCameraSink
from realtime.frames.sources import ImageFolderSource, VideoFileSource
from realtime.swap.swapper import FaceSwapper
from tests.fixtures.cameras import recording_backend
from tests.fixtures.faces import shared_path


def _read_all(path) -> list[np.ndarray]:
    return list(read_frames(path))


@pytest.fixture(scope="module")
def swapper(exported_model):
    return FaceSwapper(exported_model).prepare()


@pytest.fixture()
def recorder():
    with recording_backend("swapcam-pipeline-test") as camera:
        yield camera


def test_latest_slot_newest_wins_and_blocking_mode():
    slot = LatestSlot()
    for i in range(5):
        slot.put(i)
    assert slot.get(timeout=0.1) == 4 and slot.dropped == 4
    assert slot.get(timeout=0.01) is None
    blocking = LatestSlot(blocking=True)
    blocking.put(1)
    got = []
    t = threading.Thread(target=lambda: got.append(blocking.put(2)))
    t.start()
    time.sleep(0.05)
    assert t.is_alive()  # waits for the consumer instead of dropping
    assert blocking.get(timeout=1) == 1
    t.join(1)
    assert blocking.get(timeout=1) == 2 and blocking.dropped == 0
    blocking.close()
    assert blocking.put(3) is False


def test_video_through_exported_model_to_file_and_virtual_camera(swapper, astronaut_video, recorder, tmp_path):
    inputs = _read_all(astronaut_video)
    collect = CollectSink()
    out_path = tmp_path / "swapped.mp4"
    vcam = VirtualCameraSink(fps=25, fmt="I420", backend="swapcam-pipeline-test")
    processor = FaceSwapProcessor([swapper])
    pipe = Pipeline(VideoFileSource(astronaut_video, realtime=False), processor,
                    [collect, VideoFileSink(out_path, fps=25, live=False), vcam], record_frames=True)
    stats = pipe.run()
    processor.close()

    n = len(inputs)
    assert stats.ended_by == "source ended" and not stats.errors
    assert list(stats.seq) == list(range(n)) and stats.dropped == 0  # every frame, in order
    assert (stats.faces == 1).all()
    for stage in STAGES:
        assert len(stats.stage_ms[stage]) == n and (stats.stage_ms[stage] >= 0).all()
    for stage in ("landmarks", "align", "swap", "merge"):
        assert (stats.stage_ms[stage] > 0).all(), stage
    assert (stats.latency_ms > 0).all() and stats.fps > 0
    assert "latency p50" in stats.summary() and stats.as_dict()["frames_out"] == n

    changed_any = False
    for inp, out in zip(inputs, collect.frames):
        diff = (inp != out).any(2)
        assert not diff[:, :50].any() and not diff[:, -50:].any()  # beyond the face crop: untouched
        changed_any |= diff[180:300, 260:380].mean() > 0.5  # the face moved through here
    assert changed_any
    decoded = _read_all(out_path)
    assert len(decoded) == n and np.abs(decoded[10].astype(int) - collect.frames[10]).mean() < 8
    assert len(recorder.frames) == n
    back = cv2.cvtColor(recorder.frames[10].reshape(480 * 3 // 2, 640), cv2.COLOR_YUV2BGR_I420)
    assert np.abs(back.astype(int) - collect.frames[10]).mean() < 6  # the vcam got this frame, converted


def test_bypass_gives_the_input_frame_exactly(swapper, astronaut_video):
    processor = FaceSwapProcessor([swapper])
    processor.toggle_bypass()
    collect = CollectSink()
    stats = Pipeline(VideoFileSource(astronaut_video, realtime=False), processor, [collect]).run(max_frames=8)
    processor.close()
    inputs = _read_all(astronaut_video)[:8]
    assert stats.ended_by == "max_frames" and len(collect.frames) == 8
    assert all(np.array_equal(a, b) for a, b in zip(inputs, collect.frames))


def test_frame_without_a_face_passes_through_exactly(swapper, tmp_path, astronaut):
    wall = np.zeros((480, 640, 3), np.uint8)
    wall[:] = np.linspace(40, 200, 640, dtype=np.uint8)[None, :, None]
    cv2.imwrite(str(tmp_path / "0_wall.png"), wall)
    cv2.imwrite(str(tmp_path / "1_face.png"), cv2.resize(astronaut, (640, 480)))
    processor = FaceSwapProcessor([swapper], hold=0, fade=0)
    collect = CollectSink()
    stats = Pipeline(ImageFolderSource(tmp_path, realtime=False), processor, [collect], record_frames=True).run()
    processor.close()
    assert list(stats.faces) == [0, 1]
    assert np.array_equal(collect.frames[0], wall)
    assert not np.array_equal(collect.frames[1], cv2.resize(astronaut, (640, 480)))


def test_lost_face_is_held_then_faded(swapper, tmp_path, astronaut):
    face = cv2.resize(astronaut, (640, 480))
    wall = np.full((480, 640, 3), 90, np.uint8)
    for i, img in enumerate([face, face] + [wall] * 5):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), img)
    # A face that disappears: the frames after it show a plain wall; the held swap fades over them.
    processor = FaceSwapProcessor([swapper], hold=1, fade=2, merge=MergeSettings(color="none"))
    collect = CollectSink()
    stats = Pipeline(ImageFolderSource(tmp_path, realtime=False), processor, [collect], record_frames=True).run()
    processor.close()
    assert list(stats.faces[:5]) == [1, 1, 1, 1, 1] and list(stats.faces[5:]) == [0, 0]
    strength = [np.abs(f.astype(int) - 90).mean() for f in collect.frames[2:]]
    assert strength[0] > strength[1] > strength[2] > 0  # held at full strength, then fading
    assert strength[3] == 0 and strength[4] == 0  # then the original frame, exactly


def test_live_source_drops_old_frames_instead_of_queueing():
    """A processor slower than the camera: frames are dropped, latency stays bounded (no queue grows)."""

    class Slow(PassThrough):
        def process(self, frame, timings):
            time.sleep(0.1)
            timings["swap"] = 100.0
            return frame.image, 0

    stats = Pipeline(DemoSource(fps=30, seconds=1.5), Slow(), [CollectSink()], record_frames=True).run()
    assert stats.dropped_capture > 10
    assert stats.latency_percentile(95) < 100 + 2 * 33 + 60  # one processing time + about a frame, not growing
    assert list(stats.seq) == sorted(stats.seq)


def test_stop_from_a_sink_finalises_the_file(tmp_path):
    path = tmp_path / "stopped.mp4"
    pipe = None

    class StopAfter(CollectSink):
        def write(self, frame, info=None):
            super().write(frame, info)
            if len(self.frames) == 5:
                pipe.stop()

    collect = StopAfter()
    pipe = Pipeline(DemoSource(seconds=5, realtime=False), PassThrough(), [collect, VideoFileSink(path, live=False)])
    stats = pipe.run()
    # The contract of stop(): the frame being written when a sink calls it is the last one, and every
    # sink sees it; frames already waiting between stages are discarded.
    assert stats.ended_by == "stopped"
    assert len(collect.frames) == 5 and stats.frames_out == 5
    assert path.exists() and len(_read_all(path)) == 5


def test_processing_error_ends_cleanly_and_is_reported(tmp_path):
    class Broken(PassThrough):
        def process(self, frame, timings):
            if frame.seq == 3:
                raise RuntimeError("model exploded")
            return frame.image, 0

    path = tmp_path / "partial.mp4"
    stats = Pipeline(DemoSource(seconds=2, realtime=False), Broken(), [VideoFileSink(path, live=False)]).run()
    assert stats.ended_by == "error" and any("model exploded" in e for e in stats.errors)
    assert stats.frames_out == 3 and len(_read_all(path)) == 3  # what was written is intact


def test_shared_grid_clip(swapper):
    video = shared_path("video/grid_s26.mp4")
    processor = FaceSwapProcessor([swapper])
    stats = Pipeline(VideoFileSource(video, realtime=False), processor, [CollectSink()],
                     record_frames=True).run(max_frames=20)
    processor.close()
    assert stats.frames_out == 20 and (stats.faces == 1).mean() > 0.9


def test_split_and_serial_processing_give_the_same_frames(swapper, astronaut_video):
    """Landmarks and swap in two threads or one: the same output, frame for frame."""
    outputs = {}
    for split in (True, False):
        processor = FaceSwapProcessor([swapper])
        collect = CollectSink()
        pipe = Pipeline(VideoFileSource(astronaut_video, realtime=False), processor, [collect], split=split,
                        record_frames=True)
        assert pipe.split is split
        stats = pipe.run(max_frames=12)
        processor.close()
        assert list(stats.seq) == list(range(12)) and stats.dropped == 0
        outputs[split] = collect.frames
    assert all(np.array_equal(a, b) for a, b in zip(outputs[True], outputs[False]))
    with pytest.raises(ValueError, match="split"):
        Pipeline(DemoSource(), PassThrough(), [], split=True)


def test_two_faces_swapped_in_one_batched_call(swapper, tmp_path, grace_hopper):
    # Two people side by side (MediaPipe's short-range detector finds both at this scale).
    pair = np.hstack([grace_hopper, cv2.flip(grace_hopper, 1)])
    cv2.imwrite(str(tmp_path / "pair.png"), pair)
    calls = []
    original_get = swapper.get

    class CountingSwapper:
        """The real swapper, with its batch sizes recorded."""

        def __getattr__(self, name):
            return getattr(swapper, name)

        def get(self, faces):
            calls.append(len(faces))
            return original_get(faces)

    processor = FaceSwapProcessor([CountingSwapper()], max_faces=2)
    collect = CollectSink()
    stats = Pipeline(ImageFolderSource(tmp_path, realtime=False), processor, [collect], record_frames=True).run()
    processor.close()
    assert list(stats.faces) == [2] and calls == [2]
    diff = (collect.frames[0] != pair).any(2)
    half = grace_hopper.shape[1]
    assert diff[:, :half].mean() > 0.05 and diff[:, half:].mean() > 0.05  # both faces changed


def test_default_threading_follows_the_core_count_and_the_source(swapper, astronaut_video):
    """Always overlapped with 4+ cores; on fewer, adaptive for a camera and serial for a file read as fast as
    possible; forced either way by split=True/False; live and bench share this rule."""
    assert not split_pays_off(2) and split_pays_off(4)
    assert choose_pipelining(True, None, live=True, cores=4) == "split"
    assert choose_pipelining(True, None, live=True, cores=2) == "adaptive"
    assert choose_pipelining(True, None, live=False, cores=2) == "serial"
    assert choose_pipelining(True, False, live=True, cores=8) == "serial"
    assert choose_pipelining(True, True, live=False, cores=1) == "split"
    assert choose_pipelining(False, None, live=True, cores=2) == "serial"
    processor = FaceSwapProcessor([swapper])
    live = Pipeline(DemoSource(seconds=1), processor, [CollectSink()])
    assert live.pipelining == choose_pipelining(True, None, live=True) and live.split
    assert (live.governor is not None) is (live.pipelining == "adaptive")
    assert Pipeline(VideoFileSource(astronaut_video, realtime=False), processor, [CollectSink()]).pipelining == \
        choose_pipelining(True, None, live=False)
    assert Pipeline(DemoSource(seconds=1), PassThrough(), [CollectSink()]).split is False  # cannot split
    processor.close()


class _OrderRecorder:
    """A processor with detect/render that records when each frame's landmarks begin and its render ends."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, float]] = []
        self._lock = threading.Lock()

    def _note(self, what: str, seq: int) -> None:
        with self._lock:
            self.events.append((what, seq, time.perf_counter()))

    def detect(self, frame, timings):
        self._note("detect", frame.seq)
        return frame.image.mean()

    def render(self, frame, state, timings):
        out = cv2.GaussianBlur(frame.image, (9, 9), 0)
        self._note("rendered", frame.seq)
        return out, 1

    def process(self, frame, timings):
        return self.render(frame, self.detect(frame, timings), timings)


def test_adaptive_one_at_a_time_never_overlaps_and_overlapping_counts_its_frames():
    """Adaptive, not overlapping: the landmarks of a frame begin only after the previous frame's render has
    ended (two threads, one at a time). Overlapping: every processed frame is counted as overlapped."""
    never = OverlapGovernor(on_ratio=1e9, off_ratio=1e9)  # the camera is never too fast for it
    recorder = _OrderRecorder()
    pipe = Pipeline(DemoSource(seconds=2, fps=30), recorder, [CollectSink()], split=None, governor=never)
    if pipe.pipelining != "adaptive":
        pytest.skip(f"{pipe.pipelining} on this machine's cores: adaptive runs on fewer than 4")
    stats = pipe.run(max_frames=25)
    assert stats.pipelining == "adaptive" and stats.overlapped_frames == 0 and never.switches == 0
    assert pipe.live_figures()["overlapping"] is False
    order = [e for e in recorder.events]
    for (what, seq, _), (nxt, seq2, _) in zip(order, order[1:]):
        assert (what, nxt) in (("detect", "rendered"), ("rendered", "detect")), order
        if what == "detect":
            assert seq2 == seq  # the frame whose landmarks began is rendered before any other begins
    always = OverlapGovernor(on_ratio=1e-9, off_ratio=1e-9, overlap=True)  # never turns off
    overlapped = Pipeline(DemoSource(seconds=2, fps=30), _OrderRecorder(), [CollectSink()], governor=always)
    stats = overlapped.run(max_frames=25)
    assert overlapped.live_figures()["overlapping"] is True
    assert always.processed_frames >= 25 and always.overlapped == always.processed_frames
    assert stats.overlapped_frames == always.overlapped and stats.rendered_frames == always.processed_frames
