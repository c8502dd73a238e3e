"""Dense piecewise-affine warp of one reference face mesh onto any face mesh of the same topology.

``MeshWarp(ref_points, size)`` is built once per reference: a Delaunay triangulation of the reference
mesh (aligned pixels) plus a ring of fixed anchors around the crop, and for every pixel of the
size x size aligned grid the triangle that holds it and its barycentric weights, kept as a sparse
matrix ``B`` (pixels x vertices, three weights a row).

Per frame, ``inverse_map(points)`` answers "which reference pixel belongs at each pixel of the user's
aligned crop". The forward warp reference -> user is ``F(q) = q + U(q)`` with the displacement field
``U = B @ (points - ref_points)`` (one sparse product). Its inverse ``G`` solves ``G(p) + U(G(p)) = p``
by fixed-point iteration ``G <- p - U(G)``, each step one ``cv2.remap`` of ``U``; it converges where
the warp stretches by less than 2x, which holds everywhere but inside an opening mouth (which the
photo swapper shows from the user anyway). The residual of the last step says where it did not
converge (folds at strong head turns), so callers can hide those pixels.

A barycentric lookup of the user's own mesh would have to be rasterised again every frame (~900
triangles); the reference's lookup is fixed, so per frame the work is one sparse product and a few
remaps of a two-channel field, independent of the number of triangles.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import sparse
from scipy.spatial import Delaunay

from realtime.face.alignment import resize_box


def _anchors(size: int, per_side: int = 8, margin: float = 0.25) -> np.ndarray:
    """(4 * per_side, 2) fixed points on a square ``margin * size`` outside the crop on every side."""
    lo, hi = -margin * size, (1 + margin) * size
    t = np.linspace(lo, hi, per_side + 1)[:-1]
    back = hi - (t - lo)
    return np.concatenate([
        np.stack([t, np.full_like(t, lo)], 1),  # top, left to right
        np.stack([np.full_like(t, hi), t], 1),  # right, top to bottom
        np.stack([back, np.full_like(t, hi)], 1),  # bottom, right to left
        np.stack([np.full_like(t, lo), back], 1),  # left, bottom to top
    ])


def grid_coordinates(size: int, step: int) -> np.ndarray:
    """(n, n, 2) float32 x, y of the sample grid (every ``step``-th pixel, centred as cv2.resize expects)."""
    n = size // step
    c = np.arange(n, dtype=np.float32) * step + (step - 1) / 2.0
    xs, ys = np.meshgrid(c, c)
    return np.ascontiguousarray(np.stack([xs, ys], -1))


class MeshWarp:
    """Reference mesh -> user mesh warp in aligned space.

    ref_points: (V, 2) reference mesh in aligned pixels; size: side R of the aligned crop;
    step: the displacement field and its inverse are computed on every ``step``-th pixel and the
    final map is upsampled (1 = every pixel); iterations: fixed-point steps.
    """

    def __init__(self, ref_points: np.ndarray, size: int, *, step: int = 2, iterations: int = 4) -> None:
        if size % step:
            raise ValueError(f"size {size} must be a multiple of step {step}")
        self.ref_points = np.asarray(ref_points, np.float32)[:, :2]
        self.size, self.step, self.iterations = int(size), int(step), int(iterations)
        anchors = _anchors(size)
        vertices = np.vstack([self.ref_points, anchors]).astype(np.float64)
        tri = Delaunay(vertices)
        self.triangles = tri.simplices  # (T, 3) vertex indices, anchors included
        grid = grid_coordinates(size, step)
        self.grid = grid
        pts = grid.reshape(-1, 2).astype(np.float64)
        simplex = tri.find_simplex(pts)
        if (simplex < 0).any():  # cannot happen: the anchors enclose the crop
            raise RuntimeError("aligned grid outside the triangulation")
        transform = tri.transform[simplex]  # (P, 3, 2): barycentric transform of each pixel's triangle
        b01 = np.einsum("pij,pj->pi", transform[:, :2], pts - transform[:, 2])
        weights = np.column_stack([b01, 1.0 - b01.sum(1)]).astype(np.float32)
        rows = np.repeat(np.arange(len(pts)), 3)
        self._B = sparse.csr_matrix((weights.ravel(), (rows, tri.simplices[simplex].ravel())),
                                    shape=(len(pts), len(vertices)))
        self._n_mesh = len(self.ref_points)
        self._delta = np.zeros((len(vertices), 2), np.float32)  # per-vertex displacement; anchors stay 0
        n = size // step
        # The iteration runs in grid-index units (aligned pixel = step * index + (step - 1) / 2), the units
        # cv2.remap reads the field in; ``_to_pixels`` converts the result back.
        self._index = np.ascontiguousarray(np.stack(np.meshgrid(np.arange(n), np.arange(n)), -1).astype(np.float32))
        self._to_pixels = np.array([[step, 0.0, (step - 1) / 2.0], [0.0, step, (step - 1) / 2.0]])
        self._u = np.empty((n, n, 2), np.float32)
        self._g = np.empty((n, n, 2), np.float32)
        self.residual = np.zeros((n, n), np.float32)

    def displacement(self, points: np.ndarray) -> np.ndarray:
        """(n, n, 2) forward displacement U on the grid, in grid-index units (aligned pixels / step):
        reference grid point q goes to q + U(q)."""
        pts = np.asarray(points, np.float32)[: self._n_mesh, :2]
        if pts.shape != self.ref_points.shape:
            raise ValueError(f"expected {self.ref_points.shape} mesh points, got {pts.shape}")
        np.subtract(pts, self.ref_points, out=self._delta[: self._n_mesh])
        self._delta[: self._n_mesh] *= np.float32(1.0 / self.step)
        self._u[...] = (self._B @ self._delta).reshape(self._u.shape)
        return self._u

    def inverse_grid(self, points: np.ndarray, start: np.ndarray | None = None,
                     iterations: int | None = None) -> np.ndarray:
        """(n, n, 2) reference coordinates G(p) for the grid points p of the user's crop, in grid-index
        units (``inverse_map`` gives aligned pixels). ``start``: a first guess in the same units (e.g. the
        previous frame's answer for the same face, which is closer than the default p - U(p));
        ``iterations``: fixed-point steps for this call (default ``self.iterations``).

        ``self.residual`` is then |G_k - G_{k-1}| of the last step, in aligned pixels.
        """
        u = self.displacement(points)
        g, p = self._g, self._index
        if start is None:
            np.subtract(p, u, out=g)  # first guess: U at p instead of at G(p)
        else:
            g[...] = start
        step = np.empty_like(g)
        iterations = self.iterations if iterations is None else int(iterations)
        for _ in range(iterations):
            u_at_g = cv2.remap(u, g, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            np.subtract(p, u_at_g, out=u_at_g)  # the new G
            np.subtract(u_at_g, g, out=step)
            g, u_at_g = u_at_g, g
        self._g = g  # the buffers swap roles each step; keep the one holding the answer
        if iterations:
            dx, dy = cv2.split(step)
            self.residual = cv2.magnitude(dx, dy) * np.float32(self.step)
        else:
            self.residual = np.zeros(g.shape[:2], np.float32)
        return g

    def inverse_map(self, points: np.ndarray, affine: np.ndarray | None = None,
                    start: np.ndarray | None = None, iterations: int | None = None,
                    box: tuple[slice, slice] | None = None) -> np.ndarray:
        """(R, R, 2) float32 map for ``cv2.remap``: for each pixel of the user's aligned crop, where to
        read the reference. ``affine`` (2x3) maps reference aligned pixels to the image actually
        sampled (e.g. the original photo), so the photo is resampled once. ``start``, ``iterations``: see
        ``inverse_grid`` (whose answer is ``self.last_grid`` afterwards). ``box``: (rows, cols) slices of
        the crop: the map of those pixels only (h, w, 2), contiguous."""
        to_image = self._to_pixels
        if affine is not None:
            a = np.asarray(affine, np.float64)
            to_image = np.hstack([a[:, :2] @ to_image[:, :2], (a[:, :2] @ to_image[:, 2] + a[:, 2])[:, None]])
        g = cv2.transform(self.inverse_grid(points, start, iterations), to_image)
        if self.step == 1:
            return g if box is None else np.ascontiguousarray(g[box])
        if box is None:
            return cv2.resize(g, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        return resize_box(g, self.size, box)

    @property
    def last_grid(self) -> np.ndarray:
        """(n, n, 2) the last ``inverse_grid`` answer in grid-index units (overwritten by the next call)."""
        return self._g

    def residual_full(self) -> np.ndarray:
        """(R, R) residual of the last ``inverse_map`` at full resolution."""
        if self.step == 1:
            return self.residual
        return cv2.resize(self.residual, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
