"""Every output frame is marked: the label, the marker in the pipeline, provenance of models, fingerprints."""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
import pytest

from measure.watermark_detect import detect_frames
from realtime.marking.marker import Label, OutputMarker, fingerprint, provenance
from realtime.pipeline import Pipeline
from realtime.frames.sinks import CollectSink
from realtime.frames.sources import open_source


def test_label_is_a_small_legible_badge_in_the_bottom_right(astronaut):
    frame = np.ascontiguousarray(astronaut[:432, :512])
    label = Label()
    x0, y0, x1, y1 = label.box(frame.shape)
    h, w = frame.shape[:2]
    assert x1 <= w and y1 <= h and x0 > w / 2 and y0 > h * 0.85  # a corner badge
    assert (x1 - x0) * (y1 - y0) < 0.05 * w * h  # small
    before = frame.copy()
    label.draw(frame)
    box, old = frame[y0:y1, x0:x1].astype(int), before[y0:y1, x0:x1].astype(int)
    assert (frame[:y0] == before[:y0]).all() and (frame[:, :x0] == before[:, :x0]).all()  # nothing else touched
    text = box.max(axis=2) > 200
    assert 0.05 < text.mean() < 0.5  # white text strokes ...
    assert np.median(box[~text]) <= np.median(old) / 3 + 1  # ... on a darkened box


def test_marker_labels_then_watermarks_and_follows_the_model(astronaut):
    current = {"fp": bytes.fromhex("01020304")}
    marker = OutputMarker(lambda: current["fp"], clock=lambda: 1_780_000_000.0)
    frame = np.ascontiguousarray(astronaut)
    out = marker(frame.copy())
    det = detect_frames([out])
    assert det.found and det.payload == marker.payload and det.payload.fingerprint.hex() == "01020304"
    assert det.payload.hour == (1_780_000_000 - 1_704_067_200) // 3600  # hours since 2024-01-01 UTC
    current["fp"] = bytes.fromhex("0a0b0c0d")
    assert detect_frames([marker(frame.copy())]).payload.fingerprint.hex() == "0a0b0c0d"
    plain = OutputMarker(bytes.fromhex("01020304"), label=False)(frame.copy())
    x0, y0, x1, y1 = Label().box(frame.shape)
    assert np.abs(plain[y0:y1, x0:x1].astype(int) - frame[y0:y1, x0:x1]).max() <= 2  # no badge, only the mark


def test_pipeline_marks_every_frame_before_the_sinks_and_never_the_captured_frame(astronaut_video):
    from realtime.pipeline import PassThrough

    marker = OutputMarker(bytes.fromhex("cafef00d"))
    sink = CollectSink()
    stats = Pipeline(open_source(str(astronaut_video), realtime=False), PassThrough(), [sink], marker=marker,
                     record_frames=True).run()
    assert stats.frames_out == len(sink.frames) > 10
    assert (stats.stage_ms["mark"] > 0).all()
    x0, y0, x1, y1 = marker.label.box(sink.frames[0].shape)
    for out, info in zip(sink.frames, sink.infos):
        assert not np.shares_memory(out, info.source_image)
        assert (out[y0:y1, x0:x1].astype(int) < info.source_image[y0:y1, x0:x1]).mean() > 0.5  # the badge
        assert np.array_equal(out[:y0], np.clip(out[:y0], info.source_image[:y0].astype(int) - 2,
                                                 info.source_image[:y0].astype(int) + 2))
    det = detect_frames(sink.frames[:25])
    assert det.found and det.payload.fingerprint.hex() == "cafef00d"


def test_fingerprint_is_the_sha256_prefix_and_a_folder_hashes_its_files(tmp_path):
    f = tmp_path / "model.onnx"
    f.write_bytes(b"weights" * 1000)
    assert fingerprint(f) == hashlib.sha256(b"weights" * 1000).digest()[:4]
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"A")
    (folder / "b.jpg").write_bytes(b"B")
    lines = "".join(f"{n}\0{hashlib.sha256(c).hexdigest()}\n" for n, c in (("a.jpg", b"A"), ("b.jpg", b"B")))
    assert fingerprint(folder) == hashlib.sha256(lines.encode()).digest()[:4]


def test_provenance_of_our_model_a_bare_dfm_and_a_photo_swapper(exported_model, tmp_path):
    from realtime.swap.swapper import FaceSwapper

    ours = provenance(FaceSwapper(exported_model))
    assert ours.identity == "astronaut" and "public-domain" in ours.consent and ours.missing() == []
    assert ours.fingerprint == hashlib.sha256(exported_model.read_bytes()).digest()[:4]
    bare = tmp_path / "bare.dfm"
    proto = onnx.load(str(exported_model))
    del proto.metadata_props[:]
    onnx.save(proto, str(bare))
    record = provenance(FaceSwapper(bare))
    assert record.identity is None and record.consent is None and record.missing() == ["identity", "consent record"]

    class PhotoSwapper:  # the interface the photo swapper exposes
        path, identity, consent = bare, None, None

    assert provenance(PhotoSwapper()).missing() == ["identity", "consent record"]


@pytest.mark.parametrize("shape", [(720, 1280, 3), (480, 640, 3), (288, 360, 3)])
def test_marking_keeps_psnr_above_40_db_at_common_sizes(astronaut, shape):
    import cv2

    from measure.watermark_bench import psnr

    frame = cv2.resize(astronaut, shape[1::-1])
    marked = OutputMarker(bytes(4), label=False)(frame.copy())
    assert psnr(marked, frame) >= 40.0
