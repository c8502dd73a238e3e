"""DF / LIAE models: shapes, value ranges, presets, configuration errors."""

from __future__ import annotations

import pytest
import torch

from training.model import PRESETS, FaceSwapModel, make_config


@pytest.mark.parametrize("preset,res", [("lite", 128), ("lite", 64), ("df", 64), ("liae", 64)])
def test_forward_and_swap_shapes_and_ranges(preset, res):
    torch.manual_seed(0)
    model = FaceSwapModel(make_config(preset, res, **({} if preset == "lite" else {"ae_dims": 32, "e_dims": 8, "d_dims": 8, "d_mask_dims": 4}))).eval()
    src, dst = torch.rand(2, 3, res, res), torch.rand(3, 3, res, res)
    with torch.no_grad():
        out = model(src, dst)
        mask, celeb, celeb_mask = model.swap(dst)
    assert out["src_src"].shape == (2, 3, res, res) and out["src_src_mask"].shape == (2, 1, res, res)
    assert out["dst_dst"].shape == (3, 3, res, res) and out["dst_dst_mask"].shape == (3, 1, res, res)
    assert mask.shape == (3, 1, res, res) and celeb.shape == (3, 3, res, res) and celeb_mask.shape == (3, 1, res, res)
    for t in (*out.values(), mask, celeb, celeb_mask):
        assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0


def test_df_swap_uses_src_decoder_and_dst_mask():
    """The exported swap is the src decoder on the shared code; its input mask comes from the dst side."""
    torch.manual_seed(0)
    model = FaceSwapModel(make_config("lite", 64)).eval()
    face = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        mask, celeb, celeb_mask = model.swap(face)
        code = model.inter(model.encoder(face))
        ref_celeb, ref_celeb_mask = model.decoder_src(code)
        ref_mask = model.decoder_dst(code)[1]
    assert torch.equal(celeb, ref_celeb) and torch.equal(celeb_mask, ref_celeb_mask) and torch.equal(mask, ref_mask)


def test_presets_and_overrides():
    assert {"lite", "df", "liae"} <= set(PRESETS)
    cfg = make_config("df", 256, ae_dims=128, d_dims=None)
    assert (cfg.resolution, cfg.ae_dims, cfg.d_dims, cfg.arch) == (256, 128, 64, "df")
    # DeepFaceLab's SAEHD defaults for the large presets
    assert (PRESETS["df"].ae_dims, PRESETS["df"].e_dims, PRESETS["df"].d_dims, PRESETS["df"].d_mask_dims) == (256, 64, 64, 22)
    lite, df = FaceSwapModel(make_config("lite", 128)), FaceSwapModel(make_config("df", 128))
    assert sum(p.numel() for p in lite.parameters()) * 10 < sum(p.numel() for p in df.parameters())


@pytest.mark.parametrize("res", [48, 100, 528])
def test_bad_resolution_is_refused(res):
    with pytest.raises(ValueError, match="multiple of 16"):
        make_config("lite", res)


def test_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="unknown preset"):
        make_config("huge", 128)
