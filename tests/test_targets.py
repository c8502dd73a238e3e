"""The target gallery lists faces to swap to, and not swapcam's own helper models (the occlusion model)."""

from pathlib import Path

import pytest

from realtime.swap.model_contract import NotAFaceModelError, read_model_info
from realtime.swap.targets import describe_entry, scan_targets

MODELS = Path(__file__).resolve().parents[1] / "models"
OCCLUSION = MODELS / "occlusion.onnx"


def test_the_gallery_lists_the_shipped_faces_and_not_the_occlusion_model():
    entries = scan_targets([(MODELS, False), (MODELS / "photos", True)])
    names = {e.name: e for e in entries}
    assert "demo.onnx" in names and names["demo.onnx"].error is None
    assert any(e.kind == "photo" and e.error is None for e in entries)
    assert "occlusion.onnx" not in names


def test_the_occlusion_model_given_as_a_target_says_what_it_is():
    with pytest.raises(NotAFaceModelError, match="occlusion model.*not a face to swap to"):
        read_model_info(OCCLUSION)
    entry = describe_entry(OCCLUSION)
    assert entry.kind == "helper" and "not a face to swap to" in entry.error
    dropped = scan_targets([(MODELS, False)], extra=[OCCLUSION])
    assert [e.kind for e in dropped if e.name == "occlusion.onnx"] == ["helper"]
