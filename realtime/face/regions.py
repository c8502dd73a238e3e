"""Regions of a face in aligned space, from MediaPipe's 468/478-point mesh: what the one-photo swap replaces.

- ``face_region``: the face oval, cut across the forehead below the hairline (the mesh's oval reaches
  the hairline, so a swap bounded by it pastes the target's fringe onto the forehead);
- ``mouth_hole``: inside the inner lip contour (teeth, tongue: the user's own, never the photo's);
- ``eye_boxes`` / ``eye_opening``: between the lids of each eye (eyeball and iris: the user's own, so the
  swap blinks and looks where the user does);
- ``hair_over_forehead``: hair (a fringe, strands) hanging into the forehead band, found by colour
  against the face's own cheeks, and everything below it in the same column;
- ``features``: eyes, brows and lips (not skin on any face), for the shading match's skin sample;
- ``extend_beyond``: a photo's skin carried past its outline, so a region grown over the user's outline
  shows skin, not the photo's background;
- ``not_skin_past_outline``: what is not skin (hair framing the face, background) just past a face's outline;
- ``interior_weights``: how far inside the face (away from its outline and its lips) each mesh point
  lies, for moving the inner features to another face's proportions.

Vertex indices below are facts of MediaPipe's canonical face mesh topology (its FACEMESH_FACE_OVAL,
FACEMESH_LIPS, eye and eyebrow contours), walked into closed loops. Subject's right side is image left.
All masks are float32 in [0, 1], shape (R, R), for points given in aligned pixels of an R x R crop.
"""

from __future__ import annotations

import cv2
import numpy as np

FACE_OVAL = np.array([10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
                      152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109])
INNER_LIPS = np.array([78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95])
OUTER_LIPS = np.array([61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146])
RIGHT_EYE = np.array([33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7])
LEFT_EYE = np.array([263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249])
EYE_CONTOURS = (RIGHT_EYE, LEFT_EYE)
# Per eye (RIGHT_EYE's, then LEFT_EYE's): the corners (outer, inner) and three (upper, lower) lid points
# across the middle of the eye.
EYE_CORNERS = ((33, 133), (263, 362))
EYE_LIDS = (((160, 144), (159, 145), (158, 153)), ((387, 373), (386, 374), (385, 380)))
RIGHT_BROW = np.array([70, 63, 105, 66, 107, 55, 65, 52, 53, 46])
LEFT_BROW = np.array([300, 293, 334, 296, 336, 285, 295, 282, 283, 276])
FOREHEAD_TOP = 10
BROW_PEAKS = np.array([105, 334])
LIP_GAP = (13, 14)  # inner lip midpoints, upper and lower
MOUTH_CORNERS = (61, 291)
# Patches of bare skin on nearly every face, clear of glasses rims (mid cheeks beside the nose, the nose
# tip): the skin colour sample.
CHEEKS = np.array([205, 425, 4, 1])


def _poly(mask: np.ndarray, points: np.ndarray, value: float = 1.0) -> np.ndarray:
    cv2.fillPoly(mask, [np.round(points[:, :2] * 16).astype(np.int32)], value, lineType=cv2.LINE_AA, shift=4)
    return mask


def forehead_cut(points: np.ndarray, keep: float = 0.6) -> float:
    """y (aligned px) where the swapped region stops: ``keep`` of the way from the brow peaks up to the
    top of the mesh's oval (which lies at the hairline)."""
    brow = float(points[BROW_PEAKS, 1].mean())
    top = float(points[FOREHEAD_TOP, 1])
    return brow - keep * max(brow - top, 0.0)


def grown_oval(points: np.ndarray, grow: float) -> np.ndarray:
    """(36, 2) face-oval points moved ``grow`` pixels outward from the face centre (over the silhouette)."""
    oval = np.asarray(points[FACE_OVAL, :2], np.float64)
    if grow == 0:
        return oval
    away = oval - oval.mean(0)
    return oval + grow * away / np.maximum(np.linalg.norm(away, axis=1, keepdims=True), 1e-6)


def face_region(points: np.ndarray, size: int, keep: float = 0.6, grow: float = 0.0,
                out: np.ndarray | None = None) -> np.ndarray:
    """(size, size) mask of the face oval (grown ``grow`` px outward) below ``forehead_cut``; rows above it are 0."""
    mask = np.zeros((size, size), np.float32) if out is None else out
    mask[...] = 0
    _poly(mask, grown_oval(points, grow))
    cut = int(np.clip(np.ceil(forehead_cut(points, keep)), 0, size))
    mask[:cut] = 0
    return mask


def mouth_hole(points: np.ndarray, size: int, shrink: float = 0.0, out: np.ndarray | None = None) -> np.ndarray:
    """(size, size) mask of the inside of the inner lip contour, drawn ``shrink`` pixels inside it (so a
    merge that feathers the mask outward leaves the lips alone); empty when the lips touch."""
    mask = np.zeros((size, size), np.float32) if out is None else out
    mask[...] = 0
    lips = np.asarray(points[INNER_LIPS, :2], np.float64)
    if shrink:
        centre = lips.mean(0)
        inward = centre - lips
        length = np.linalg.norm(inward, axis=1, keepdims=True)
        lips = lips + inward * np.minimum(shrink, 0.5 * length) / np.maximum(length, 1e-6)
    return _poly(mask, lips)


def eye_opennesses(points: np.ndarray) -> np.ndarray:
    """(2,) lid gap over eye width of each eye (RIGHT_EYE's, LEFT_EYE's): the mean of the three EYE_LIDS gaps
    over the corner-to-corner width (about 0.25-0.35 open, under 0.1 closed)."""
    pts = np.asarray(points, np.float64)[:, :2]
    out = np.empty(2)
    for k, ((outer, inner), lids) in enumerate(zip(EYE_CORNERS, EYE_LIDS)):
        width = max(float(np.linalg.norm(pts[outer] - pts[inner])), 1e-6)
        out[k] = np.mean([np.linalg.norm(pts[u] - pts[d]) for u, d in lids]) / width
    return out


def eye_widths(points: np.ndarray) -> np.ndarray:
    """(2,) corner-to-corner width of each eye (pixels of ``points``)."""
    pts = np.asarray(points, np.float64)[:, :2]
    return np.array([np.linalg.norm(pts[a] - pts[b]) for a, b in EYE_CORNERS])


def eye_boxes(points: np.ndarray, shape: tuple[int, int], margin: float) -> list[tuple[int, tuple[slice, slice]]]:
    """[(eye: 0 for RIGHT_EYE, 1 for LEFT_EYE, (rows, cols) slices)]: the box around each eye's lid contour
    grown by ``margin`` pixels, within an image of ``shape`` (height, width); an eye whose box is empty (off
    the image) is left out."""
    boxes = []
    limit = np.array([shape[1], shape[0]])
    for eye, contour in enumerate(EYE_CONTOURS):
        pts = np.asarray(points[contour, :2], np.float64)
        x0, y0 = np.clip(np.floor(pts.min(0) - margin).astype(int), 0, limit)
        x1, y1 = np.clip(np.ceil(pts.max(0) + margin).astype(int) + 1, 0, limit)
        if x1 > x0 and y1 > y0:
            boxes.append((eye, (slice(int(y0), int(y1)), slice(int(x0), int(x1)))))
    return boxes


def eye_opening(points: np.ndarray, eye: int, box: tuple[slice, slice], grow: float = 0.0) -> np.ndarray:
    """(h, w) float32 mask of the opening of ``eye`` (0: RIGHT_EYE, 1: LEFT_EYE; inside its lid contour) on
    ``box`` of the image only, anti-aliased; ``grow`` > 0 moves the contour outward from the eye's
    centre by that many pixels (< 0 inward)."""
    rows, cols = box
    mask = np.zeros((rows.stop - rows.start, cols.stop - cols.start), np.float32)
    pts = np.asarray(points[EYE_CONTOURS[eye], :2], np.float64)
    if grow:
        away = pts - pts.mean(0)
        pts = pts + grow * away / np.maximum(np.linalg.norm(away, axis=1, keepdims=True), 1e-6)
    return _poly(mask, pts - (cols.start, rows.start))


def mouth_openness(points: np.ndarray) -> float:
    """Gap between the inner lips over the mouth's width (0 closed, ~0.3 wide open)."""
    gap = np.linalg.norm(points[LIP_GAP[0], :2] - points[LIP_GAP[1], :2])
    width = np.linalg.norm(points[MOUTH_CORNERS[0], :2] - points[MOUTH_CORNERS[1], :2])
    return float(gap / max(width, 1e-6))


def eye_openness(points: np.ndarray) -> float:
    """Mean eyelid gap over eye width of both eyes (about 0.25-0.35 open, < 0.12 closed)."""
    ratios = []
    for upper, lower, a, b in ((159, 145, 33, 133), (386, 374, 263, 362)):
        gap = np.linalg.norm(points[upper, :2] - points[lower, :2])
        ratios.append(gap / max(np.linalg.norm(points[a, :2] - points[b, :2]), 1e-6))
    return float(np.mean(ratios))


def skin_model(image_bgr: np.ndarray, points: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean (3,) and inverse spread (3,) of the Lab colour of the cheek patches of an aligned face.

    image_bgr: (R, R, 3) uint8; radius: half side of each square patch in pixels. Lab is OpenCV's 8-bit
    scale; channels are treated as independent. The spread is floored (~6 L units, ~2.5 a/b units) so a
    very even skin does not make every other pixel 'not skin'.
    """
    size = image_bgr.shape[0]
    patches = []
    for x, y in np.round(points[CHEEKS, :2]).astype(int):
        x0, y0 = np.clip([x - radius, y - radius], 0, size - 1)
        x1, y1 = np.clip([x + radius + 1, y + radius + 1], 1, size)
        if x1 > x0 and y1 > y0:
            patches.append(image_bgr[y0:y1, x0:x1].reshape(-1, 3))
    pixels = np.concatenate(patches) if patches else image_bgr.reshape(-1, 3)
    lab = cv2.cvtColor(pixels[None], cv2.COLOR_BGR2LAB)[0].astype(np.float32)
    mean, std = cv2.meanStdDev(lab[:, None, :])
    spread = np.sqrt(std.ravel() ** 2 + np.array([40.0, 6.0, 6.0]))
    return mean.ravel().astype(np.float32), (1.0 / spread).astype(np.float32)


def skin_distance(lab: np.ndarray, mean: np.ndarray, inv_spread: np.ndarray) -> np.ndarray:
    """(H, W) squared normalised distance of every Lab pixel to the skin model of ``skin_model``."""
    d = (lab - mean) * inv_spread
    return (d * d).sum(-1)


def hair_over_forehead(image_bgr: np.ndarray, points: np.ndarray, keep: float = 0.6,
                       threshold: float = 16.0) -> np.ndarray:
    """(R, R) mask of hair in the forehead band of an aligned face (1 = hair, to be left out).

    The band runs from ``forehead_cut`` down to the brow peaks. A pixel is hair-like when its Lab colour
    lies ``threshold`` (squared normalised units) or more from the cheeks' skin; hair-like blobs that
    reach the band's top edge (hair hangs from above) are kept, and every pixel below such a blob in the
    same column, down to the band's bottom, is hair too (a fringe covers what is under it). Rows above
    the band are 1. The band is examined at half resolution (a fringe is no finer than that).
    """
    size = image_bgr.shape[0]
    mask = np.zeros((size, size), np.float32)
    top = int(np.clip(np.floor(forehead_cut(points, keep)), 0, size - 1))
    bottom = int(np.clip(np.ceil(points[BROW_PEAKS, 1].max()), top + 1, size))
    mask[:top] = 1.0
    if bottom - top < 4:
        return mask
    band = image_bgr[top:bottom]
    small = cv2.resize(band, (size // 2, (bottom - top) // 2), interpolation=cv2.INTER_AREA)
    mean, inv_spread = skin_model(image_bgr, points, radius=max(1, size // 64))
    lab = cv2.cvtColor(small, cv2.COLOR_BGR2LAB).astype(np.float32)
    hairy = (skin_distance(lab, mean, inv_spread) > threshold).astype(np.uint8)
    k = max(1, size // 192)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    hairy = cv2.morphologyEx(hairy, cv2.MORPH_OPEN, disc)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(hairy, connectivity=8)
    touching = [i for i in range(1, n) if stats[i, cv2.CC_STAT_TOP] <= k]
    if not touching:
        return mask
    hair = np.maximum.accumulate(np.isin(labels, touching), axis=0).astype(np.float32)  # all under a strand
    mask[top:bottom] = cv2.resize(hair, (size, bottom - top), interpolation=cv2.INTER_LINEAR)
    return mask


def not_skin_past_outline(image_bgr: np.ndarray, points: np.ndarray, grow: float, keep: float = 0.6,
                          threshold: float = 16.0) -> np.ndarray:
    """(R, R) float32 mask of what the aligned face ``image_bgr`` shows in the band between its face oval and the
    oval grown ``grow`` pixels (below ``forehead_cut``) that is not skin: pixels ``threshold`` (squared normalised
    units, as ``hair_over_forehead``) or more from the cheeks' skin colour (``skin_model``), such as hair framing
    the face or the background; 0 elsewhere."""
    size = image_bgr.shape[0]
    band = face_region(points, size, keep, grow)
    band -= face_region(points, size, keep)
    out = np.zeros((size, size), np.float32)
    inside = band > 0.01
    if not inside.any():
        return out
    mean, inv_spread = skin_model(image_bgr, points, radius=max(1, size // 64))
    lab = cv2.cvtColor(image_bgr[inside][:, None], cv2.COLOR_BGR2LAB)[:, 0].astype(np.float32)  # the band's pixels only
    out[inside] = (skin_distance(lab, mean, inv_spread) > threshold) * band[inside]
    return out


def extend_beyond(image: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """A copy of ``image`` where every pixel outside the ``inside`` mask (> 0.5) takes the colour of the
    nearest inside pixel: the face's own skin carried past its outline, so a region grown over the
    outline shows skin rather than the photo's background."""
    outside = (inside <= 0.5).astype(np.uint8)
    if not outside.any() or outside.all():
        return image.copy()
    _, labels = cv2.distanceTransformWithLabels(outside, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(outside == 0)  # row-major: the order of DIST_LABEL_PIXEL's labels
    out = image.copy()
    sel = outside.astype(bool)
    nearest = labels[sel] - 1
    out[sel] = image[ys[nearest], xs[nearest]]
    return out


def features(points: np.ndarray, size: int, grow: float) -> np.ndarray:
    """(size, size) uint8 mask of the eyes, brows and lips, grown by ``grow`` pixels: what is not skin
    on every face."""
    mask = np.zeros((size, size), np.uint8)
    for part in (RIGHT_EYE, LEFT_EYE, RIGHT_BROW, LEFT_BROW, OUTER_LIPS):
        cv2.fillPoly(mask, [np.round(points[part, :2]).astype(np.int32)], 1)
    g = max(1, int(round(grow)))
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * g + 1, 2 * g + 1)))


def interior_weights(points: np.ndarray, oval_band: float = 0.12, lip_band: float = 0.10,
                     lip_gap: float = 0.02) -> np.ndarray:
    """(V,) float32 weight in [0, 1] of each mesh point: 0 on the face oval and on the lips, rising to 1 at
    ``oval_band`` (fraction of the face's width) inside the oval and ``lip_gap + lip_band`` outside the
    outer lip contour. Points with weight 1 (eyes, brows, nose, mid cheeks) may take another face's
    proportions while the outline (the user's silhouette) and the lips (the user's mouth) stay put."""
    pts = np.asarray(points, np.float32)[:, :2]
    width = max(float(np.linalg.norm(pts[234] - pts[454])), 1e-6)  # cheek to cheek across the oval

    def signed_distance(polygon: np.ndarray) -> np.ndarray:  # > 0 inside
        contour = pts[polygon].reshape(-1, 1, 2)
        return np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), True) for x, y in pts])

    inside_oval = np.clip(signed_distance(FACE_OVAL) / (oval_band * width), 0.0, 1.0)
    off_lips = np.clip((-signed_distance(OUTER_LIPS) - lip_gap * width) / (lip_band * width), 0.0, 1.0)
    return (inside_oval * off_lips).astype(np.float32)
