"""Reference-prior models: the target's reference face warped onto each face's mesh as a second input,
from the faceset's meshes through training and export to the live processor, on real faces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from realtime.swap.model_contract import PRIOR_INPUT_NAME, read_model_info
from realtime.swap.reference_prior import Reference, ReferencePrior
from training.dataset import AugmentConfig, PairDataset
from training.faceset import Faceset
from training.faceset_mesh import faceset_meshes
from training.model import FaceSwapModel, make_config


@pytest.fixture(scope="module")
def meshes(astronaut_faceset) -> dict[str, np.ndarray]:
    return faceset_meshes(Faceset.open(astronaut_faceset), progress=False)


def test_every_fixture_face_gets_a_mesh_that_agrees_with_its_68_landmarks(astronaut_faceset, meshes):
    from realtime.face.alignment import mesh_to_68

    faceset = Faceset.open(astronaut_faceset)
    assert len(meshes) == len(faceset)
    for rec in faceset.records[::10]:
        mesh = meshes[rec.file]
        assert mesh.shape == (478, 2)
        assert np.abs(mesh_to_68(mesh) - rec.aligned_points()).mean() < 2.0  # aligned px, 128 px crop
    assert faceset_meshes(faceset, progress=False).keys() == meshes.keys()  # read back from the cache


def test_the_reference_warped_onto_its_own_mesh_is_itself(astronaut_faceset, meshes):
    faceset = Faceset.open(astronaut_faceset)
    rec = faceset.records[0]
    reference = Reference(faceset.load_image(rec), meshes[rec.file])
    warped = ReferencePrior(reference, 128)(meshes[rec.file])
    centre = (slice(32, 96), slice(32, 96))
    assert np.abs(warped[centre].astype(float) - reference.image[centre]).mean() < 2.0
    back = Reference.from_metadata(reference.to_metadata())
    assert np.array_equal(back.image, reference.image) and np.allclose(back.mesh, reference.mesh, atol=0.01)


def test_training_samples_carry_a_prior_that_moves_with_the_target(astronaut_faceset, grace_hopper_faceset, meshes):
    """With the reference taken from the sampled face itself, the prior equals the target (same affine)."""
    src, dst = Faceset.open(astronaut_faceset), Faceset.open(grace_hopper_faceset)
    rec = src.records[0]
    only = {rec.file: meshes[rec.file]}  # one face with a mesh: every src sample is that face
    reference = Reference(src.load_image(rec), meshes[rec.file])
    aug = AugmentConfig(random_warp=True, hsv_jitter=False, color_transfer=0.0, rotation_deg=10, scale=0.05, shift=0.05)
    ds = PairDataset(src, dst, 128, aug, seed=3, reference=reference, src_meshes=only)
    for i in range(3):
        sample = ds[i]
        target, prior = sample["src_target"].numpy(), sample["src_prior"].numpy()
        assert prior.shape == target.shape == (3, 128, 128)
        assert np.abs(prior[:, 32:96, 32:96] - target[:, 32:96, 32:96]).mean() < 0.02
        assert "dst_prior" not in sample


def test_an_untrained_prior_model_outputs_the_prior_and_needs_it():
    model = FaceSwapModel(make_config("prior", 64)).eval()
    face, prior = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    _, celeb, _ = model.swap(face, prior)
    assert torch.equal(celeb, prior)  # the correction starts at zero: the warp itself
    with pytest.raises(ValueError, match="prior"):
        model.swap(face)


@pytest.fixture(scope="module", params=["prior", "prior_fast"])
def prior_model(request, astronaut_faceset, grace_hopper_faceset, meshes, tmp_path_factory):
    """A prior model trained a few steps by the real trainer and exported (fp32): the study's preset and the
    base's (masks made at a quarter of the resolution, narrower decoder)."""
    from tests.fixtures.models import fixture_train_config
    from training.export import ExportRequest, export_checkpoint
    from training.trainer import train

    out = tmp_path_factory.mktemp("runs") / request.param
    result = train(fixture_train_config(astronaut_faceset, grace_hopper_faceset, out, preset=request.param, steps=6,
                                        preview_every=3))
    assert result.step == 6 and (out / "reference.npz").exists() and (out / "preview.png").exists()
    path = tmp_path_factory.mktemp("models") / "prior.onnx"
    export_checkpoint(ExportRequest(checkpoint=out / "checkpoint.pt", out=path, identity="astronaut",
                                    consent="public-domain test image"))
    return out, path


def test_export_declares_the_prior_input_and_embeds_the_reference(prior_model):
    import onnx

    _, prior_model = prior_model
    info = read_model_info(prior_model)
    assert info.has_prior_input and info.metadata["swapcam.prior"] == "mesh_warp_v1"
    names = [i.name for i in onnx.load(str(prior_model)).graph.input]
    assert names == ["in_face:0", PRIOR_INPUT_NAME]
    reference = Reference.from_metadata(info.metadata)
    assert reference.image.shape == (128, 128, 3) and reference.mesh.shape == (478, 2)


def test_the_swapper_builds_the_prior_from_meshes_and_matches_torch(prior_model, astronaut_faceset, meshes):
    from realtime.swap.swapper import FaceSwapper
    from training.checkpoint import load_checkpoint

    run_dir, path = prior_model
    swapper = FaceSwapper(path).prepare()
    assert swapper.needs_mesh
    faceset = Faceset.open(astronaut_faceset)
    recs = faceset.records[:2]
    crops = np.stack([faceset.load_image(r) for r in recs])
    mesh = np.stack([meshes[r.file] for r in recs])
    result = swapper.get(crops, mesh)
    with pytest.raises(ValueError, match="meshes"):
        swapper.get(crops)
    # the same faces and the same prior through the checkpoint's torch model: the same swap
    reference = Reference.from_metadata(swapper.info.metadata)
    priors = np.stack([ReferencePrior(reference, 128)(m) for m in mesh]).astype(np.float32) / 255.0
    model = load_checkpoint(run_dir / "checkpoint.pt").build_model().eval()
    to_nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))  # noqa: E731
    with torch.no_grad():
        _, celeb, _ = model.swap(to_nchw(crops.astype(np.float32) / 255.0), to_nchw(priors))
    assert np.abs(result.face - celeb.permute(0, 2, 3, 1).numpy()).max() < 1e-3


def test_a_prior_models_swap_stops_below_the_hairline(prior_model, astronaut_faceset, meshes):
    """The target's fringe, which a model trained on that person draws, never lands on the user's
    forehead: both masks are 0 above the forehead cut of the face's own mesh and the model's below it."""
    from realtime.face.regions import forehead_cut
    from realtime.swap.model_contract import INPUT_NAME, OUTPUT_NAMES
    from realtime.swap.swapper import FaceSwapper

    faceset = Faceset.open(astronaut_faceset)
    rec = faceset.records[0]
    crop, mesh = faceset.load_image(rec)[None], meshes[rec.file][None].astype(np.float32)
    swapper = FaceSwapper(prior_model[1]).prepare()
    swapper.user_mouth = False  # (the mouth opening: next test)
    result = swapper.get(crop, mesh)
    raw = swapper.session.run(list(OUTPUT_NAMES), {INPUT_NAME: swapper._input(crop),
                                                   PRIOR_INPUT_NAME: swapper._prior_input(mesh, 1)})
    cut = int(np.ceil(forehead_cut(mesh[0], swapper.forehead_keep)))
    assert 0 < cut < 128 * 0.4  # above the brows, inside the crop
    for got, model in ((result.face_mask, raw[0]), (result.celeb_mask, raw[2])):
        assert not got[0, :cut].any()
        assert np.array_equal(got[0, cut:], model[0, cut:, :, 0]) and model[0, :cut].max() > 0


def test_a_prior_models_swap_shows_the_users_open_mouth(prior_model, astronaut_faceset, meshes):
    """Inside the inner lips of an open mouth the face mask is 0 (the merge keeps the user's own teeth, as the
    one-photo swap does), elsewhere it is the model's; with ``user_mouth`` off the model draws the opening."""
    from realtime.face.regions import mouth_hole
    from realtime.swap.swapper import FaceSwapper

    faceset = Faceset.open(astronaut_faceset)
    crop, mesh = faceset.load_image(faceset.records[0])[None], meshes[faceset.records[0].file][None].astype(np.float32)
    mesh = mesh.copy()
    mesh[0, 14, 1] += 12.0  # open the mouth: lower inner-lip midpoint down 12 px
    swapper = FaceSwapper(prior_model[1]).prepare()
    hole = mouth_hole(mesh[0], swapper.resolution, swapper._mouth_shrink) > 0.99
    assert hole.sum() > 20
    with_mouth = swapper.get(crop, mesh).face_mask[0]
    swapper.user_mouth = False
    drawn = swapper.get(crop, mesh).face_mask[0]
    assert with_mouth[hole].max() < 0.05 and drawn[hole].min() > 0
    far = mouth_hole(mesh[0], swapper.resolution, -6.0) == 0  # more than 6 px away from the opening
    assert np.array_equal(with_mouth[far], drawn[far])


def test_a_prior_model_runs_on_the_torch_provider_as_on_onnx_runtime(prior_model, astronaut_faceset, meshes):
    """--provider torch (the GPU path without onnxruntime-gpu) feeds the warped reference too: same outputs."""
    from realtime.swap.swapper import FaceSwapper
    from realtime.swap.torch_runner import TORCH_PROVIDER

    faceset = Faceset.open(astronaut_faceset)
    recs = faceset.records[:3]
    crops = np.stack([faceset.load_image(r) for r in recs])
    mesh = np.stack([meshes[r.file] for r in recs])
    on_torch = FaceSwapper(prior_model[1], providers=[TORCH_PROVIDER], threads=1).prepare()
    assert on_torch.session is None and on_torch.needs_mesh
    got, ref = on_torch.get(crops, mesh), FaceSwapper(prior_model[1]).get(crops, mesh)
    for name in ("face", "face_mask", "celeb_mask"):
        assert np.abs(getattr(got, name) - getattr(ref, name)).max() < 1e-3, name
    with pytest.raises(ValueError, match="meshes"):
        on_torch.get(crops)


def test_the_live_processor_swaps_with_a_prior_model(prior_model, astronaut_video):
    from measure.evaluate import read_frames
    from realtime.merging.merge import MergeSettings
    from realtime.processor import FaceSwapProcessor
    from realtime.frames.sources import Frame
    from realtime.swap.swapper import FaceSwapper

    frames = list(read_frames(astronaut_video, 5))
    # a few steps in, the model's masks are not yet a face: merge by the crop, not by the masks
    processor = FaceSwapProcessor([FaceSwapper(prior_model[1]).prepare()], merge=MergeSettings(mask="none"))
    try:
        for i, frame in enumerate(frames):
            out, faces = processor.process(Frame(frame, i, 0.0, 0.0, i / 25.0), {})
            assert faces == 1 and out.shape == frame.shape and not np.array_equal(out, frame)
    finally:
        processor.close()
