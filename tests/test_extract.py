"""Extraction: real videos and stills -> aligned faceset; resume; corrupt inputs; the CLI."""

from __future__ import annotations

import numpy as np

from training.faceset import Faceset

# Until tests/conftest.py lists "tests.fixtures.videos" and "tests.fixtures.facesets" in pytest_plugins.
from tests.fixtures.facesets import astronaut_faceset, grace_hopper_faceset  # noqa: F401
from tests.fixtures.videos import astronaut_video, grace_hopper_video, still_face_video  # noqa: F401


def test_fixture_facesets_have_a_face_for_every_frame(astronaut_faceset, grace_hopper_faceset):
    for path in (astronaut_faceset, grace_hopper_faceset):
        fs = Faceset.open(path)
        assert (fs.resolution, fs.face_type) == (128, "whole_face")
        assert [r.frame for r in fs] == list(range(40))
        img = fs.load_image(fs.records[0])
        assert img.shape == (128, 128, 3) and img.std() > 20
