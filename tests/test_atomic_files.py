"""Atomic writes leave the old file in place when writing fails, and no temp file behind."""

import numpy as np
import pytest

from realtime.util.atomic_files import atomic_path, write_image, write_text


def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path):
    target = write_text(tmp_path / "report.json", "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_images_are_written_in_the_suffix_format_or_refused(tmp_path):
    img = np.full((8, 8, 3), 200, np.uint8)
    assert write_image(tmp_path / "a.png", img).read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(OSError, match="could not write"):
        write_image(tmp_path / "a.unknownformat", img)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]
