"""The dense piecewise-affine warp: exact at the mesh vertices, identity for an unmoved mesh, on real meshes."""

from __future__ import annotations

import numpy as np
import pytest

from realtime.face.alignment import align_matrix, transform_points
from realtime.swap.mesh_warp import MeshWarp, grid_coordinates

SIZE = 128


@pytest.fixture(scope="module")
def meshes(still_landmarker, astronaut, grace_hopper):
    """The astronaut's and Grace Hopper's meshes (468 points) in their own aligned crops."""
    out = []
    for image in (astronaut, grace_hopper):
        face = still_landmarker.detect(image)[0]
        m = align_matrix(face.landmarks68, SIZE, "full")
        out.append(transform_points(face.points[:468], m).astype(np.float32))
    return out


def test_an_unmoved_mesh_maps_every_pixel_to_itself(meshes):
    warp = MeshWarp(meshes[0], SIZE, step=1)
    m = warp.inverse_map(meshes[0])
    assert np.abs(m - grid_coordinates(SIZE, 1)).max() < 1e-3


def test_a_shifted_mesh_maps_by_the_shift_inside_the_face(meshes):
    warp = MeshWarp(meshes[0], SIZE, step=2)
    m = warp.inverse_map(meshes[0] + np.float32([3.0, -2.0]))
    # a pixel of the moved face reads the reference 3 px left and 2 px down of itself
    x, y = np.round(meshes[0][1]).astype(int) + (3, -2)  # a vertex (nose tip) of the moved face
    assert np.allclose(m[y, x], (x - 3, y + 2), atol=0.2)


@pytest.mark.parametrize("step", [1, 2])
def test_the_user_mesh_vertices_read_the_reference_vertices(meshes, step):
    ref, user = meshes
    warp = MeshWarp(ref, SIZE, step=step)
    m = warp.inverse_map(user)
    inside = np.all((user >= 1) & (user <= SIZE - 2), 1)
    # sample the map at each user vertex (bilinear): it must point at the same vertex of the reference
    xy = user[inside]
    x0, y0 = np.floor(xy).astype(int).T
    fx, fy = (xy - np.floor(xy)).T
    at = (m[y0, x0] * ((1 - fx) * (1 - fy))[:, None] + m[y0, x0 + 1] * (fx * (1 - fy))[:, None]
          + m[y0 + 1, x0] * ((1 - fx) * fy)[:, None] + m[y0 + 1, x0 + 1] * (fx * fy)[:, None])
    err = np.linalg.norm(at - ref[inside], axis=1)
    assert np.median(err) < 0.3 and np.percentile(err, 90) < 1.0
    assert np.percentile(warp.residual_full(), 99) < 0.5  # the inverse converged over (nearly) the whole crop


def test_bad_shapes_are_refused(meshes):
    with pytest.raises(ValueError, match="multiple of step"):
        MeshWarp(meshes[0], 129, step=2)
    warp = MeshWarp(meshes[0], SIZE)
    with pytest.raises(ValueError, match="mesh points"):
        warp.inverse_map(meshes[0][:68])


def test_a_warm_start_from_the_last_answer_converges_further_in_fewer_steps(meshes):
    """Frame to frame a face's mesh moves a little: starting from the previous answer, 3 steps land closer
    to the converged map than the default 4 from the cold first guess."""
    ref, user = meshes
    before = ref + 0.95 * (user - ref)  # the "previous frame": nearly the user's mesh (a small change of expression)
    exact = MeshWarp(ref, SIZE, step=2, iterations=30).inverse_map(user).copy()
    warp = MeshWarp(ref, SIZE, step=2, iterations=4)
    cold = warp.inverse_map(user).copy()
    warp.inverse_map(before)
    previous = warp.last_grid.copy()
    warm = warp.inverse_map(user, start=previous, iterations=3)
    face = np.zeros((SIZE, SIZE), bool)
    x0, y0 = np.floor(user.min(0)).astype(int) + 8
    x1, y1 = np.ceil(user.max(0)).astype(int) - 8
    face[y0:y1, x0:x1] = True
    err_cold = np.linalg.norm(cold - exact, axis=-1)[face]
    err_warm = np.linalg.norm(warm - exact, axis=-1)[face]
    assert np.percentile(err_warm, 99) < np.percentile(err_cold, 99)
    assert err_warm.mean() < err_cold.mean()


def test_the_map_of_a_box_is_the_box_of_the_whole_map(meshes):
    ref, user = meshes
    warp = MeshWarp(ref, SIZE, step=2)
    whole = warp.inverse_map(user).copy()
    box = (slice(10, 120), slice(7, SIZE))
    part = warp.inverse_map(user, box=box)
    assert part.shape == (110, SIZE - 7, 2) and part.flags["C_CONTIGUOUS"]
    assert np.abs(part - whole[box]).max() < 0.01
