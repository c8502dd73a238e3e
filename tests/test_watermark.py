"""The output watermark: payload and code, embedding cost and quality, detection after what calls, streams
and layouts do to video.

The robustness tests are the short version of ``python -m measure.watermark_bench``: a 2-second 720p clip of
the built-in demo source (the package-shipped astronaut), marked, put through an attack (a picture-in-picture
on a 1080p canvas, a mirror, a turn, ...), encoded with the ffmpeg of imageio-ffmpeg (libx264 CRF 28),
decoded, detected as one window.
"""

from __future__ import annotations

import datetime as dt

import cv2
import numpy as np
import pytest

from measure.watermark_bench import (
    brightness,
    crop,
    game_background,
    h264_roundtrip,
    load_clip,
    mirror,
    natural_background,
    picture_in_picture,
    psnr,
    rotate,
    synthetic_pictures,
    to_720p,
)
from measure.watermark_detect import (
    Z_THRESHOLD,
    _best_oriented,
    detect_frames,
    detect_residuals,
    normalise,
    regional,
    viterbi_decode,
)
from realtime.marking.watermark import (
    CODED_BITS,
    MESSAGE_BITS,
    V1_CELLS_PER_HEIGHT,
    Payload,
    Watermarker,
    conv_encode,
    message_pattern,
)

PAYLOAD = Payload.now(bytes.fromhex("5ca1ab1e"), dt.datetime(2026, 3, 14, 15, 9, tzinfo=dt.timezone.utc))


def test_payload_round_trips_and_its_checksum_catches_a_flipped_bit():
    bits = PAYLOAD.message_bits()
    assert bits.shape == (MESSAGE_BITS,) and MESSAGE_BITS >= 48 + 16
    back = Payload.from_message_bits(bits)
    assert back == PAYLOAD and back.fingerprint.hex() == "5ca1ab1e"
    assert back.time == dt.datetime(2026, 3, 14, 15, tzinfo=dt.timezone.utc)
    for i in (0, 10, 40, MESSAGE_BITS - 1):
        flipped = bits.copy()
        flipped[i] ^= 1
        assert Payload.from_message_bits(flipped) is None, i


def test_convolutional_code_corrects_noisy_soft_bits():
    coded = conv_encode(PAYLOAD.message_bits())
    assert coded.shape == (CODED_BITS,)
    rng = np.random.default_rng(7)
    soft = (1.0 - 2.0 * coded) + rng.normal(0.0, 0.9, CODED_BITS)  # ~13% of hard decisions wrong
    assert np.mean((soft < 0) != coded) > 0.05
    assert Payload.from_message_bits(viterbi_decode(soft)) == PAYLOAD


def test_embedding_is_in_place_faint_and_found_in_one_still(astronaut):
    frame = to_720p(astronaut)
    marked = frame.copy()
    out = Watermarker(PAYLOAD).embed(marked)
    assert out is marked
    assert psnr(marked, frame) >= 40.0
    assert int(np.abs(marked.astype(int) - frame).max()) <= 2
    det = detect_frames([marked])
    assert det.found and det.payload == PAYLOAD and det.z >= Z_THRESHOLD
    assert not detect_frames([frame]).found


def test_unmarked_package_faces_raise_no_alarm(astronaut, grace_hopper):
    for image in (astronaut, grace_hopper, to_720p(astronaut), cv2.resize(grace_hopper, (640, 360))):
        assert not detect_frames([image]).found


@pytest.fixture(scope="module")
def demo_clip():
    """2 seconds of the demo source at 1280x720 (frames, fps), unmarked and marked."""
    frames, fps, _ = load_clip("demo", 2.0)
    marker = Watermarker(PAYLOAD)
    return frames, [marker.embed(f.copy()) for f in frames], fps


@pytest.mark.parametrize("attack", ["h264", "360p", "crop", "brighter", "darker"])
def test_marked_clip_is_read_after_what_calls_and_streams_do(demo_clip, attack):
    _, marked, fps = demo_clip
    attacked = {
        "h264": lambda: h264_roundtrip(marked, fps),
        "360p": lambda: h264_roundtrip(marked, fps, size=(640, 360)),
        "crop": lambda: h264_roundtrip(crop(marked), fps),
        "brighter": lambda: h264_roundtrip(brightness(marked, 1.1), fps),
        "darker": lambda: h264_roundtrip(brightness(marked, 0.9), fps),
    }[attack]()
    assert len(attacked) == len(marked)
    if attack == "360p":
        assert attacked[0].shape[:2] == (360, 640)
    det = detect_frames(attacked)
    assert det.found and det.payload == PAYLOAD, det


LAYOUTS = {  # name: (attack, expected scale, angle, mirrored)
    "PiP 25% bottom-right over a game": (lambda fr, fps: picture_in_picture(fr, 0.25, (1, 1), game_background()),
                                         0.25, 0.0, False),
    "PiP 33% top-left over a photograph": (lambda fr, fps: picture_in_picture(fr, 1 / 3, (0, 0),
                                                                               natural_background()), 1 / 3, 0.0, False),
    "PiP 50% off-centre over a game": (lambda fr, fps: picture_in_picture(fr, 0.5, (0.3, 0.7), game_background()),
                                       0.5, 0.0, False),
    "PiP 100% (upscaled to 1080p)": (lambda fr, fps: picture_in_picture(fr, 1.0, (0, 0), game_background()),
                                     1.0, 0.0, False),
    "mirrored": (lambda fr, fps: mirror(fr), 1.0, 0.0, True),
    "rotated +5 deg": (lambda fr, fps: rotate(fr, 5), 1.0, 5.0, False),
    "rotated -2 deg": (lambda fr, fps: rotate(fr, -2), 1.0, -2.0, False),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_marked_clip_is_read_after_a_streamers_layout_and_h264(demo_clip, layout):
    """Picture-in-picture at 25-100 % of a 1920x1080 canvas anywhere, mirroring and small turns, then CRF 28:
    found, and the detector says where the picture was (its scale, turn and mirroring)."""
    _, marked, fps = demo_clip
    attack, scale, angle, mirrored = LAYOUTS[layout]
    attacked = h264_roundtrip(list(attack(marked, fps)), fps)
    det = detect_frames(attacked)
    assert det.found and det.payload == PAYLOAD, det
    assert abs(det.scale - scale) < 0.02 * scale and abs(det.angle - angle) < 0.3 and det.mirrored == mirrored, det
    assert not detect_frames(h264_roundtrip(list(attack(demo_clip[0], fps)), fps)).found  # the unmarked clip


def test_a_format_1_mark_is_still_read(astronaut):
    """Recordings made before format 2 (8-px cells at 720p) are read by the same detector."""
    old = Payload(bytes.fromhex("0badf00d"), PAYLOAD.hour, version=1)
    marked = Watermarker(old, cells_per_height=V1_CELLS_PER_HEIGHT).embed(to_720p(astronaut))
    det = detect_frames([marked])
    assert det.found and det.payload == old and det.payload.version == 1


def test_pictures_made_to_look_like_a_tiled_mark_raise_no_alarm():
    """Checkerboards, gratings, tiled noise and tiled blocks at many periods (some turned), a game frame:
    periodic pictures light up the lattice search (tiled random blocks, a mark with other chips, reach a
    sync z above the threshold), but the checksum of what they decode to never matches."""
    results = [(name, detect_frames([picture])) for name, picture in synthetic_pictures()]
    assert len(results) >= 25
    assert [name for name, det in results if det.found] == []
    assert all(det.payload is None for _, det in results)


def test_unmarked_clip_after_h264_is_not_found(demo_clip):
    frames, _, fps = demo_clip
    det = detect_frames(h264_roundtrip(frames, fps))
    assert not det.found and det.z < Z_THRESHOLD


def test_unmarked_shared_stills_raise_no_alarm():
    from tests.fixtures.faces import shared_path

    folder = shared_path("stills/london")
    paths = sorted(folder.glob("*.jpg"))[::4]  # every 4th of 140: neutral and smiling, many sitters
    found = [p.name for p in paths if detect_frames([cv2.imread(str(p))]).found]
    assert len(paths) >= 30 and found == []


def _pip_residual(amplitude: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A whitened 1080p canvas (unit noise) holding a mark's pattern as a 25 % picture-in-picture (480 x 270 px,
    6 % of the canvas, near the bottom-right corner) at ``amplitude``: (full, half-size) residuals."""
    pattern = cv2.resize(message_pattern(PAYLOAD, 720, 1280).astype(np.float32), (480, 270), interpolation=cv2.INTER_AREA)
    canvas = np.random.default_rng(seed).normal(0.0, 1.0, (1080, 1920)).astype(np.float32)
    canvas[770:1040, 1380:1860] += amplitude * pattern
    return canvas, cv2.resize(canvas, (960, 540), interpolation=cv2.INTER_AREA)


def test_a_small_picture_is_read_by_folding_only_where_the_mark_is():
    """Folded whole, the 94 % of the canvas around a 25 % picture-in-picture drowns the mark; folded where the
    sync cells show, it is read, and the detector says how much of the picture it counted."""
    residuals = _pip_residual(0.2, seed=2)
    whole = detect_residuals(residuals, by_region=False)
    assert not whole.found, whole
    det = detect_residuals(residuals)
    assert det.found and det.payload == PAYLOAD, det
    assert abs(det.scale - 0.25) < 0.01 and 0.04 < det.region < 0.25, det  # the picture: 6 % of the canvas


def test_choosing_where_to_look_does_not_raise_an_unmarked_pictures_score():
    """Cross-fitting: the region is chosen with one half of the sync cells and scored with the other, so on
    unmarked noise the regional score is no higher than the whole picture's."""
    scores = []
    for seed in range(16):
        noise = np.random.default_rng(100 + seed).normal(0.0, 1.0, (600, 800)).astype(np.float32)
        basis = np.eye(2) * 128.0
        normalised = normalise(noise, basis)
        whole = _best_oriented(normalised, basis)
        scores.append((whole.z, regional(normalised, whole).z))
    whole_z, regional_z = np.array(scores).T
    assert regional_z.mean() <= whole_z.mean() + 0.2 and regional_z.max() < Z_THRESHOLD - 1.0, scores
