"""Reference faces for the one-photo swap: the best of several is chosen (and why), bad photos are refused."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.swap.reference import ReferenceError, describe_reference, load_reference, read_image
from tests.fixtures.faces import shared_path

SHIPPED_PHOTO = Path(__file__).resolve().parents[1] / "models" / "photos" / "london_063.jpg"


def _write(path, image):
    assert cv2.imwrite(str(path), image)
    return path


def test_one_photo_gives_its_face_and_says_why(tmp_path, astronaut):
    ref = load_reference(_write(tmp_path / "a.png", astronaut))
    assert ref.considered == 1 and ref.chosen.label == "a.png"
    assert ref.mesh.shape == (478, 3) and ref.image.shape == astronaut.shape
    assert ref.identity is None and ref.consent is None  # nothing given
    line = describe_reference(ref)
    assert "a.png" in line and "yaw" in line and "mouth" in line and "\n" not in line


def test_a_sidecar_names_identity_consent_and_credit(tmp_path, astronaut):
    photo = _write(tmp_path / "a.png", astronaut)
    (tmp_path / "a.json").write_text(json.dumps({"identity": "Eileen Collins", "consent": "public domain (NASA)",
                                                 "credit": "NASA"}))
    ref = load_reference(photo)
    assert (ref.identity, ref.consent, ref.credit) == ("Eileen Collins", "public domain (NASA)", "NASA")


def test_a_folder_picks_the_sharp_upright_photo(tmp_path, grace_hopper):
    h, w = grace_hopper.shape[:2]
    rolled = cv2.warpAffine(grace_hopper, cv2.getRotationMatrix2D((w / 2, h / 2), 25, 1.0), (w, h),
                            borderMode=cv2.BORDER_REPLICATE)
    _write(tmp_path / "1_blurred.png", cv2.GaussianBlur(grace_hopper, (0, 0), 3))
    _write(tmp_path / "2_rolled.png", rolled)
    _write(tmp_path / "3_sharp.png", grace_hopper)
    _write(tmp_path / "4_nothing.png", np.full((200, 200, 3), (40, 120, 200), np.uint8))
    (tmp_path / "5_broken.jpg").write_bytes(b"not a jpeg")
    ref = load_reference(tmp_path)
    assert ref.chosen.label == "3_sharp.png" and ref.considered == 3
    assert sum(ref.skipped.values()) == 2  # the faceless image and the broken file, counted
    assert "best of 3" in ref.why


def test_a_folder_of_a_real_sitter_picks_neutral_over_smiling(tmp_path):
    london = shared_path("stills/london")
    for name in ("010_03.jpg", "010_08.jpg"):  # neutral, smiling: the same woman
        (tmp_path / name).write_bytes((london / name).read_bytes())
    ref = load_reference(tmp_path)
    assert ref.chosen.label == "010_03.jpg"


def test_a_video_picks_a_frame_and_names_it():
    clip = shared_path("video/grid_s1.mp4")
    ref = load_reference(clip)
    assert ref.chosen.label.startswith("grid_s1.mp4 frame ") and ref.considered >= 30
    assert ref.chosen.mouth_open < 0.05 and abs(ref.chosen.yaw) < 10


@pytest.mark.parametrize("case, message", [
    ("unreadable", "cannot be decoded"),
    ("truncated", "is truncated"),
    ("empty", "is empty"),
    ("grey", "greyscale"),
    ("grey_as_colour", "greyscale"),
    ("transparent", "transparent"),
    ("no_face", "no face"),
    ("two_faces", "2 faces"),
    ("tiny_face", "face only"),
])
def test_bad_photos_are_refused_with_one_line(tmp_path, astronaut, grace_hopper, case, message):
    path = tmp_path / f"{case}.png"
    if case == "unreadable":
        path = tmp_path / "broken.jpg"
        path.write_bytes(b"GIF89a definitely not a picture")
    elif case == "truncated":  # the first 5 kB of a real photo, as a copy that stopped early leaves it
        path = tmp_path / "cut.jpg"
        path.write_bytes(SHIPPED_PHOTO.read_bytes()[:5000])
    elif case == "empty":
        path = tmp_path / "empty.jpg"
        path.write_bytes(b"")
    elif case == "grey":
        _write(path, cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY))
    elif case == "grey_as_colour":
        _write(path, cv2.cvtColor(cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR))
    elif case == "transparent":
        bgra = cv2.cvtColor(astronaut, cv2.COLOR_BGR2BGRA)
        bgra[:, :100, 3] = 0
        _write(path, bgra)
    elif case == "no_face":
        _write(path, np.full((300, 300, 3), (40, 120, 200), np.uint8))
    elif case == "two_faces":
        _write(path, np.hstack([grace_hopper, cv2.flip(grace_hopper, 1)]))
    elif case == "tiny_face":
        _write(path, cv2.resize(astronaut, (200, 200), interpolation=cv2.INTER_AREA))  # a face of about 40 px
    with pytest.raises(ReferenceError, match=message) as info:
        load_reference(path)
    assert "\n" not in str(info.value) and path.name in str(info.value)


def test_a_truncated_photo_is_named_truncated_not_greyscale(tmp_path):
    """OpenCV decodes a cut-short JPEG half grey; the refusal must say truncated (issue 24), through the CLI too."""
    from swapcam.cli import main

    cut = tmp_path / "london_cut.jpg"
    cut.write_bytes(SHIPPED_PHOTO.read_bytes()[:5000])
    with pytest.raises(ReferenceError, match="truncated") as info:
        read_image(cut)
    assert "greyscale" not in str(info.value)
    assert main(["live", "--model", str(cut), "--source", "demo", "--sink", "null", "--max-frames", "1"]) == 2


def test_a_photo_is_turned_upright_by_its_exif_orientation(tmp_path, astronaut):
    """A phone photo stores its pixels sideways with an EXIF orientation; the face is found upright."""
    from PIL import Image

    stored = np.ascontiguousarray(np.rot90(astronaut))  # 90 deg counter-clockwise, as a phone held sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 deg clockwise to display"
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored[:, :, ::-1]).save(path, exif=exif.tobytes(), quality=95)
    upright = read_image(path)
    assert np.abs(upright.astype(int) - astronaut).mean() < 6  # JPEG noise only: the same picture, upright
    assert abs(load_reference(path).chosen.roll) < 15


def test_an_opaque_bgra_photo_is_accepted(tmp_path, astronaut):
    path = _write(tmp_path / "opaque.png", cv2.cvtColor(astronaut, cv2.COLOR_BGR2BGRA))
    assert read_image(path).shape == astronaut.shape
    assert load_reference(path).considered == 1


def test_missing_and_unknown_paths(tmp_path):
    with pytest.raises(ReferenceError, match="photo not found"):
        load_reference(tmp_path / "nobody.jpg")
    with pytest.raises(ReferenceError, match="not a photo"):
        load_reference(tmp_path / "notes.txt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ReferenceError, match="no photos"):
        load_reference(empty)
