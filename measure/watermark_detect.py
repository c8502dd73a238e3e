"""Find and read the watermark of ``realtime.marking.watermark`` in frames, images and videos, wherever
a layout put it: scaled, cropped, shown as a picture-in-picture anywhere on a larger canvas, mirrored,
turned a little.

The mark is a tile of TILE x TILE cells repeated over the whole frame, so the picture's residual
repeats with the tile's period: its autocorrelation (ACF) has peaks on a square lattice whose spacing
is the tile's size in pixels and whose direction is the rotation. Steps, for a still or a window of
video frames (``detect_frames``):

1. **Residual.** Each frame's luma (at its own size, at most ``MAX_WORK_HEIGHT`` rows) is high-passed
   (minus a Gaussian blur: the picture's smooth parts are interference, the mark is fine-grained),
   divided by its local spread (so textured parts do not drown the mark in flat ones) and clipped;
   the residuals are averaged over the frames (the mark is static, picture and codec noise are not).
   A second average at half size serves the large tiles (cheaper, and fits cells of 6 px or more).
2. **Lattice.** The ACF of each average (FFT) is searched over tile sizes and angles (``lattice_search``)
   for the lattice of peaks: per candidate, the median over six lattice points of the ACF's *peakness*
   (its value minus that of its two radial neighbours, so that the ridge a straight edge leaves through
   the origin, e.g. a rotated frame's border, scores nothing). The best candidates are refined from
   the peaks' centroids into a 2x2 lattice basis (any small rotation or scaling, even unequal in x/y).
   The geometry of an untouched or resized frame (and of format v1's smaller cells) is always tried too.
3. **Tile.** For each candidate, the residual is warped so that the tile is ``TILE_PX`` square and axis-
   aligned, *folded* (summed modulo the tile) onto one tile, and correlated with the known sync cells by
   FFT in each of the tile's 8 orientations (a square lattice looks the same mirrored or turned by 90
   degrees). The sync score is a z-score: the peak over the spread of the correlation over all shifts.
   **Where the mark is.** Each candidate is folded again with every pixel weighted by how clearly the
   found sync cells show around it (``regional``): a picture-in-picture at 25 % is 6 % of a 1080p
   canvas, and the plain fold adds the other 94 % as noise. The weights found with one half of the
   sync cells fold the picture that the other half is scored on (cross-fitting), so that looking where
   the noise happens to resemble the sync does not raise an unmarked picture's score.
4. **Payload.** At the best candidate, orientation and shift, each data cell's value times its chip is
   a soft vote for its coded bit; soft-decision Viterbi decodes 72 bits, and the CRC-16 says whether
   they are a payload.

"Found" needs both: sync z >= ``Z_THRESHOLD`` and a matching CRC.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from realtime.marking.watermark import (
    CELLS_PER_HEIGHT,
    CODED_BITS,
    CONV_GENERATORS,
    CONV_K,
    MESSAGE_BITS,
    TILE,
    V1_CELLS_PER_HEIGHT,
    Payload,
    conv_encode,
    tile_layout,
)

DETECT_CELL_PX = 4  # cells are resampled to this size before folding
TILE_PX = TILE * DETECT_CELL_PX  # 128
MAX_WORK_HEIGHT = 1080  # bigger frames are shrunk to this height first (a 4K canvas: 1080)
HIGHPASS_SIGMA = 1.5  # px at working resolution
SPREAD_SHRINK = 4  # the local spread is measured at 1/4 size (then a ~4 px neighbourhood)
CLIP_SIGMAS = 3.0
# Tile sizes searched, relative to the tile of an untouched frame (frame height / CELLS_PER_HEIGHT
# px cells): a picture-in-picture at 25 % of the canvas (0.25) to a crop of about a third (1.5).
SCALE_RANGE = (0.23, 1.55)
ANGLE_RANGE = 6.0  # degrees either way
ANGLE_STEP = 0.5
SIZE_STEP = 0.01  # relative step between tile sizes searched
HALF_SIZE_CELL_PX = 6.0  # tiles whose cells are at least this big at half size are searched and folded there
# The power spectrum is flattened (to the power 1 - 0.5) before the ACF: a background's own structure (a
# launch tower's trusses behind a 33 % picture-in-picture) sits at a few frequencies and outranked the
# mark's lattice; flattened, the mark's broadband lattice wins (those windows: 0/2 -> 2/2 read).
ACF_WHITENING = 0.5
LATTICE_CANDIDATES = 6  # per resolution: a picture-in-picture's lattice can rank below its background's
# The folded tile's spectrum is flattened (magnitudes to the power 1 - 0.75) before the sync correlation
# and the decoding: on the handheld clip at 25 % of a 1080p canvas, coded bits right 70 % -> 80 % (the
# payload read), sync z +10-40 % on every attack tried.
TILE_WHITENING = 0.75
# Where the mark is (step 3b): the fold is re-done with each pixel weighted by how well the found sync
# pattern correlates around it. A picture-in-picture at 25 % covers 6 % of a 1080p canvas, and an
# unweighted fold adds the other 94 % as noise: on the handheld clip there, windows read 1/16 -> 11/16.
REGION_SIGMA_CELLS = 24.0  # the local correlation is smoothed over this many cells (Gaussian sigma: 3/4 tile)
REGION_Z = 1.0  # weight = max(0, local z - REGION_Z): regions where the pattern is clearly absent count 0
REGION_SKIP_Z = 14.0  # a whole-picture fold this clear (twice the threshold) is not folded again by region
LATTICE_POINTS = np.array([(1, 0), (0, 1), (1, 1), (1, -1), (2, 0), (0, 2)], np.float32)
# The threshold on the sync z-score (with a matching CRC-16 besides). Unmarked inputs (every window of
# every clip in ../shared/data, attacked and not, every still, package images, synthetic pictures):
# the highest z among them is in the README's table; marked windows after the attacks: much higher.
Z_THRESHOLD = 7.0


@dataclass
class Detection:
    """The outcome for one still or one window of frames.

    found: sync z >= threshold and CRC ok; payload: the decoded payload (None when the CRC failed);
    z: sync z-score; scale: the tile's size relative to an untouched frame's; angle: how far the picture was
    turned (degrees, counter-clockwise as seen);
    mirrored: the picture was flipped (left-right or up-down: the same up to a half turn); shift: where
    the tile was found (detection pixels); bit_agreement: share of coded bits whose soft vote agrees with
    the decoded message re-encoded; frames: frames averaged.
    """

    found: bool
    payload: Payload | None
    z: float
    scale: float
    shift: tuple[int, int]
    bit_agreement: float
    frames: int
    angle: float = 0.0
    mirrored: bool = False
    soft_bits: np.ndarray | None = None  # (CODED_BITS,) soft votes, positive = bit 0 (for analysis)
    region: float = 1.0  # the fold's effective share of the picture (1: all of it; a 25 % picture-in-picture ~0.1)


# -- 1. residuals ----------------------------------------------------------------------------------
def _luma(frame: np.ndarray) -> np.ndarray:
    """Grey uint8 (or float) luma of a BGR or grey frame, shrunk to at most MAX_WORK_HEIGHT rows."""
    y = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    h, w = y.shape
    if h > MAX_WORK_HEIGHT:
        y = cv2.resize(y, (max(1, round(w * MAX_WORK_HEIGHT / h)), MAX_WORK_HEIGHT), interpolation=cv2.INTER_AREA)
    return y


@lru_cache(maxsize=1)
def _highpass_kernel() -> np.ndarray:
    return cv2.getGaussianKernel(2 * int(np.ceil(3 * HIGHPASS_SIGMA)) + 1, HIGHPASS_SIGMA).astype(np.float32)


def whiten(y: np.ndarray) -> np.ndarray:
    """High-passed luma over its local spread, clipped: float32, same size as ``y`` (uint8 or float)."""
    kernel = _highpass_kernel()
    r = cv2.subtract(y.astype(np.float32), cv2.sepFilter2D(y, cv2.CV_32F, kernel, kernel))
    h, w = r.shape
    small = (max(1, w // SPREAD_SHRINK), max(1, h // SPREAD_SHRINK))
    energy = cv2.GaussianBlur(cv2.resize(cv2.multiply(r, r), small, interpolation=cv2.INTER_AREA), (0, 0), 1.0)
    gain = cv2.resize(1.0 / (np.sqrt(energy) + 1.0), (w, h), interpolation=cv2.INTER_LINEAR)
    cv2.multiply(r, gain, dst=r)
    limit = CLIP_SIGMAS * float(r[::3, ::3].std()) + 1e-6
    return np.clip(r, -limit, limit, out=r)


def residual(frame: np.ndarray) -> np.ndarray:
    """A frame's whitened luma at working resolution: float32 (H', W')."""
    return whiten(_luma(frame))


def _half(y: np.ndarray) -> np.ndarray:
    return cv2.resize(y, (max(1, y.shape[1] // 2), max(1, y.shape[0] // 2)), interpolation=cv2.INTER_AREA)


class ResidualAverage:
    """Running sums of the residual over frames, at working size and at half that size (frames of another
    size start new sums)."""

    def __init__(self) -> None:
        self.total: np.ndarray | None = None
        self.total_half: np.ndarray | None = None
        self.frames = 0

    def add(self, frame: np.ndarray) -> None:
        y = _luma(frame)
        r, r_half = whiten(y), whiten(_half(y))
        if self.total is None or self.total.shape != r.shape:
            self.total, self.total_half, self.frames = r, r_half, 0
        else:
            cv2.add(self.total, r, dst=self.total)
            cv2.add(self.total_half, r_half, dst=self.total_half)
        self.frames += 1

    def means(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean residual at working size, mean residual at half size), float32."""
        if self.total is None:
            raise ValueError("no frames added")
        return self.total / self.frames, self.total_half / self.frames

    def mean(self) -> np.ndarray:
        return self.means()[0]


# -- 2. lattice ------------------------------------------------------------------------------------
def autocorrelation(image: np.ndarray, max_lag: int) -> np.ndarray:
    """The ACF of ``image`` (its power spectrum flattened by ACF_WHITENING) for lags up to ``max_lag`` px,
    centred (lag 0 at [H//2, W//2] of the result), each lag divided by the square root of its overlap and
    the whole put in robust z units (median 0, MAD 1 over lags beyond a few px); lags with too little
    overlap are 0. float32 (2*max_lag+1 square at most)."""
    h, w = image.shape
    lag_y, lag_x = min(max_lag, h - 1), min(max_lag, w - 1)
    size = (cv2.getOptimalDFTSize(h + lag_y), cv2.getOptimalDFTSize(w + lag_x))
    padded = np.zeros(size, np.float32)
    padded[:h, :w] = image
    spectrum = cv2.dft(padded)  # packed (CCS): half the work of a complex transform
    power = cv2.mulSpectrums(spectrum, spectrum, 0, conjB=True)  # real in CCS: |F|^2, and 0 where imaginary
    power /= np.abs(power) ** ACF_WHITENING + 1e-12 * float(power.max()) + 1e-30
    acf = cv2.idft(power, flags=cv2.DFT_REAL_OUTPUT | cv2.DFT_SCALE)
    rows = np.r_[size[0] - lag_y:size[0], 0:lag_y + 1]
    cols = np.r_[size[1] - lag_x:size[1], 0:lag_x + 1]
    acf = np.ascontiguousarray(acf[np.ix_(rows, cols)])
    dy = np.abs(np.arange(-lag_y, lag_y + 1, dtype=np.float32))
    dx = np.abs(np.arange(-lag_x, lag_x + 1, dtype=np.float32))
    overlap = np.outer(h - dy, w - dx)
    enough = overlap >= 0.05 * h * w
    acf *= np.outer(1.0 / np.sqrt(h - dy), 1.0 / np.sqrt(w - dx)).astype(np.float32)
    acf[~enough] = 0.0
    far = enough & (np.add.outer(dy * dy, dx * dx) > 16 * 16)
    values = acf[far][::7]  # a sample is enough for the median and the spread
    if values.size < 16:
        return np.zeros_like(acf)
    med = float(np.median(values))
    mad = float(np.median(np.abs(values - med))) * 1.4826 + 1e-12
    acf -= med
    acf *= 1.0 / mad
    acf[~enough] = 0.0
    return acf


def _sample(acf: np.ndarray, lx: np.ndarray, ly: np.ndarray) -> np.ndarray:
    """Bilinear samples of a centred ACF at lags (lx, ly) (arrays of one shape; 0 outside)."""
    h, w = acf.shape
    shape = lx.shape
    mx = (lx + w // 2).astype(np.float32).reshape(shape[0], -1)
    my = (ly + h // 2).astype(np.float32).reshape(shape[0], -1)
    return cv2.remap(acf, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0).reshape(shape)


def peakness(acf: np.ndarray, lx: np.ndarray, ly: np.ndarray, delta: np.ndarray | float) -> np.ndarray:
    """The ACF at lags (lx, ly) minus the mean of its two radial neighbours ``delta`` px nearer and farther.

    A ridge through the origin (what a long straight edge in the picture leaves) scores 0; an isolated
    peak (the mark's lattice) keeps its height."""
    r = np.hypot(lx, ly) + 1e-6
    ux, uy = lx / r * delta, ly / r * delta
    return _sample(acf, lx, ly) - 0.5 * (_sample(acf, lx + ux, ly + uy) + _sample(acf, lx - ux, ly - uy))


def _rotation(angle: np.ndarray | float):
    return np.cos(angle), np.sin(angle)


def lattice_search(acf: np.ndarray, sizes: np.ndarray, angles: np.ndarray, keep: int = LATTICE_CANDIDATES
                   ) -> list[tuple[float, float, float]]:
    """The ``keep`` best (score, tile size px, angle rad) over ``sizes`` x ``angles`` (each at least 5 % in size
    or 1.5 degrees away from the ones before it).

    Score: the median over LATTICE_POINTS (those inside the ACF) of the peakness at size x R(angle) x
    point; at least four points must be inside.
    """
    h, w = acf.shape
    size, angle = np.meshgrid(sizes, angles, indexing="ij")
    c, s = _rotation(angle)
    px, py = LATTICE_POINTS[:, 0], LATTICE_POINTS[:, 1]
    lx = size[..., None] * (px * c[..., None] - py * s[..., None])
    ly = size[..., None] * (px * s[..., None] + py * c[..., None])
    inside = (np.abs(lx) < w // 2 - 3) & (np.abs(ly) < h // 2 - 3)
    inside &= _sample((acf != 0).astype(np.float32), lx, ly) > 0.99
    values = peakness(acf, lx, ly, 2.0 * size[..., None] / TILE)
    with warnings.catch_warnings():  # candidates with no point inside: all-NaN rows, scored -inf below
        warnings.simplefilter("ignore", RuntimeWarning)
        score = np.nanmedian(np.where(inside, values, np.nan), axis=-1)
    score = np.where(inside.sum(-1) >= 4, score, -np.inf)
    found = []
    for _ in range(keep):
        i, j = np.unravel_index(int(np.argmax(score)), score.shape)
        if not np.isfinite(score[i, j]):
            break
        found.append((float(score[i, j]), float(sizes[i]), float(angles[j])))
        score[max(0, i - 5):i + 6, max(0, j - 2):j + 3] = -np.inf  # the next candidate: another size or angle
    return found


def refine_basis(acf: np.ndarray, size: float, angle: float) -> np.ndarray:
    """The lattice basis (2x2, columns: the two tile vectors in x, y px) fitted by least squares to the
    centroids of the peaks near the first lattice points; the candidate itself where too few are clear."""
    h, w = acf.shape
    c, s = _rotation(angle)
    basis = np.array([[c, -s], [s, c]]) * size
    cell = size / TILE
    reach = max(2.0, 0.8 * cell)
    grid = np.arange(-reach, reach + 1e-9, 0.25)
    gy, gx = np.meshgrid(grid, grid, indexing="ij")
    points, lags, weights = [], [], []
    for i, j in ((1, 0), (0, 1), (1, 1), (1, -1), (2, 0), (0, 2), (2, 1), (1, 2), (2, -1), (1, -2)):
        v = basis @ np.array([i, j], float)
        if abs(v[0]) + reach + 2 * cell >= w // 2 - 2 or abs(v[1]) + reach + 2 * cell >= h // 2 - 2:
            continue
        lx, ly = v[0] + gx, v[1] + gy
        pk = peakness(acf, lx, ly, 2.0 * cell)
        top = float(pk.max())
        if top < 3.0:
            continue
        mass = np.clip(pk - 0.5 * top, 0, None)
        points.append((i, j))
        lags.append(((mass * lx).sum() / mass.sum(), (mass * ly).sum() / mass.sum()))
        weights.append(top)
    if len(points) < 3 or np.linalg.matrix_rank(np.array(points, float)) < 2:
        return basis
    n = np.array(points, float)
    wt = np.sqrt(np.array(weights))[:, None]
    fit = np.linalg.lstsq(n * wt, np.array(lags) * wt, rcond=None)[0].T
    if abs(np.linalg.det(fit)) < 0.5 * size * size or np.abs(fit - basis).max() > 0.05 * size:
        return basis
    return fit


# -- 3. tile -----------------------------------------------------------------------------------------
def normalise(image: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """``image`` warped so that the lattice ``basis`` (columns, px) becomes TILE_PX x identity."""
    a = TILE_PX * np.linalg.inv(basis)
    h, w = image.shape
    scale = float(np.sqrt(abs(np.linalg.det(a))))
    if scale < 0.7:  # shrink with area averaging first: warpAffine alone would alias
        shrunk = cv2.resize(image, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)
        a = a @ np.diag([w / shrunk.shape[1], h / shrunk.shape[0]])
        image, (h, w) = shrunk, shrunk.shape
    corners = (np.array([[0, 0], [w, 0], [0, h], [w, h]], float) - [w / 2, h / 2]) @ a.T
    out_w = int(np.ceil(np.ptp(corners[:, 0]))) + 2
    out_h = int(np.ceil(np.ptp(corners[:, 1]))) + 2
    m = np.zeros((2, 3), np.float64)
    m[:, :2] = a
    m[:, 2] = np.array([out_w / 2, out_h / 2]) - a @ np.array([w / 2, h / 2])
    return cv2.warpAffine(image, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def fold(image: np.ndarray, period: int | None = None) -> np.ndarray:
    """Sum ``image`` modulo ``period`` (default TILE_PX) in both axes -> (period, period) float64 (zero-padded edges)."""
    period = period or TILE_PX
    h, w = image.shape
    ph, pw = -h % period, -w % period
    padded = np.pad(image, ((0, ph), (0, pw))) if ph or pw else image
    return padded.reshape((h + ph) // period, period, (w + pw) // period, period).sum(axis=(0, 2), dtype=np.float64)


@lru_cache(maxsize=2)
def _sync_spectrum(cell_px: int) -> np.ndarray:
    """Conjugate rFFT of the sync cells (data cells 0) drawn at ``cell_px`` pixels per cell."""
    layout = tile_layout()
    sync_px = np.kron(np.where(layout.sync, layout.chips, 0.0), np.ones((cell_px, cell_px)))
    return np.conj(np.fft.rfft2(sync_px))


def sync_scores(tile: np.ndarray, spectrum: np.ndarray) -> tuple[float, tuple[int, int]]:
    """z-score of the best cyclic shift of the sync cells in a folded tile, and that shift (dy, dx)."""
    corr = np.fft.irfft2(np.fft.rfft2(tile) * spectrum, s=tile.shape)
    idx = int(np.argmax(corr))
    dy, dx = divmod(idx, tile.shape[1])
    std = float(corr.std())
    return (float(corr.flat[idx] - corr.mean()) / std if std > 0 else 0.0), (dy, dx)


# The tile's 8 orientations (the symmetries of a square): 0-3 turns, then mirrored and 0-3 turns.
ORIENTATIONS = tuple((k, flip) for flip in (False, True) for k in range(4))


def orient(tile: np.ndarray, k: int, flip: bool) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(tile[:, ::-1] if flip else tile, k))


@dataclass
class _Candidate:
    z: float
    shift: tuple[int, int]
    tile: np.ndarray  # oriented, not yet aligned on the sync
    basis: np.ndarray
    flip: bool
    turns: int = 0  # quarter turns of the orientation (``orient``)
    region: float = 1.0  # the fold's effective share of the picture, (sum w)^2 / (n sum w^2): 1 unweighted


def whiten_tile(tile: np.ndarray, power: float = TILE_WHITENING) -> np.ndarray:
    """The folded tile with its spectrum's magnitudes raised to 1 - ``power`` (0: unchanged, 1: phase only).

    What the picture leaves in the fold is concentrated at a few frequencies (edges, textures, the
    background's structure); the mark's cells are spread evenly. Flattening the spectrum before
    correlating and decoding is partial phase correlation."""
    spectrum = np.fft.rfft2(tile)
    magnitude = np.abs(spectrum)
    spectrum /= magnitude ** power + 1e-9 * float(magnitude.max()) + 1e-30
    return np.fft.irfft2(spectrum, s=tile.shape)


def _best_orientation(image: np.ndarray, basis: np.ndarray) -> _Candidate:
    return _best_oriented(normalise(image, basis), basis)


def _best_oriented(normalised: np.ndarray, basis: np.ndarray, weight: np.ndarray | None = None) -> _Candidate:
    """The best of the 8 orientations of the (weighted) fold of a normalised residual."""
    tile = whiten_tile(fold(normalised if weight is None else normalised * weight))
    spectrum = _sync_spectrum(DETECT_CELL_PX)
    best = None
    for k, flip in ORIENTATIONS:
        oriented = orient(tile, k, flip)
        z, shift = sync_scores(oriented, spectrum)
        if best is None or z > best.z:
            best = _Candidate(z, shift, oriented, basis, flip, k)
    return best


def _unorient(tile: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """The inverse of ``orient``."""
    back = np.rot90(tile, -k)
    return np.ascontiguousarray(back[:, ::-1] if flip else back)


@lru_cache(maxsize=1)
def _sync_halves() -> tuple[np.ndarray, np.ndarray]:
    """The sync cells split in two alternate halves (every other sync cell in raster order), each as its
    chips (other cells 0), one value per cell: two float32 (TILE, TILE)."""
    layout = tile_layout()
    order = np.cumsum(layout.sync.ravel()).reshape(layout.sync.shape)
    return tuple(np.where(layout.sync & (order % 2 == parity), layout.chips, 0.0).astype(np.float32)
                 for parity in (0, 1))


def _cell_phase(steps: np.ndarray) -> int:
    """Where cells start (0..DETECT_CELL_PX-1) along an axis, from the summed jumps between neighbours."""
    boundary = (np.arange(1, len(steps) + 1)) % DETECT_CELL_PX
    return int(np.argmax([steps[boundary == p].sum() for p in range(DETECT_CELL_PX)]))


def _placed(cells: np.ndarray, cand: _Candidate) -> tuple[np.ndarray, tuple[int, int]]:
    """Cell values (TILE, TILE) placed in the normalised residual's frame as ``cand`` found the tile: the
    (TILE, TILE) values that fall on the cells of the residual cropped by the returned (rows, cols) pixels."""
    px = np.kron(cells, np.ones((DETECT_CELL_PX, DETECT_CELL_PX), np.float32))
    placed = _unorient(np.roll(px, cand.shift, axis=(0, 1)), cand.turns, cand.flip)
    phase = tuple(_cell_phase(np.abs(np.diff(placed, axis=axis)).sum(axis=1 - axis)) for axis in (0, 1))
    blocks = np.roll(placed, (-phase[0], -phase[1]), axis=(0, 1))
    return np.ascontiguousarray(blocks[::DETECT_CELL_PX, ::DETECT_CELL_PX]), phase


@lru_cache(maxsize=1)
def _half_sync_spectra() -> tuple[np.ndarray, np.ndarray]:
    """Conjugate rFFT of each half of the sync cells drawn at DETECT_CELL_PX pixels per cell."""
    cell = np.ones((DETECT_CELL_PX, DETECT_CELL_PX))
    return tuple(np.conj(np.fft.rfft2(np.kron(half, cell))) for half in _sync_halves())


def mark_weights(normalised: np.ndarray, cand: _Candidate) -> list[np.ndarray]:
    """Where the mark is, as fold weights, once from each half of the sync cells: two float32 arrays of the
    normalised residual's shape.

    The residual is averaged over the candidate's cells; each half's chips, repeated over it, are
    multiplied with it and smoothed over half a tile: positive where the mark is. The same with the
    chips put half a tile off (where they cannot match) gives the spread of that measure where there is
    no mark; the weight is the local z-score less REGION_Z, floored at 0."""
    h, w = normalised.shape
    out = []
    for half in _sync_halves():
        cells, (oy, ox) = _placed(half, cand)
        rows, cols = (h - oy) // DETECT_CELL_PX, (w - ox) // DETECT_CELL_PX
        if rows < 4 or cols < 4:
            return [np.ones_like(normalised)] * 2
        crop = normalised[oy:oy + rows * DETECT_CELL_PX, ox:ox + cols * DETECT_CELL_PX]
        mean = cv2.resize(crop, (cols, rows), interpolation=cv2.INTER_AREA)
        reps = (rows // TILE + 1, cols // TILE + 1)
        local = [cv2.GaussianBlur(mean * np.tile(np.roll(cells, (off, off), axis=(0, 1)), reps)[:rows, :cols],
                                  (0, 0), REGION_SIGMA_CELLS) for off in (0, TILE // 2)]
        inside = cv2.resize((crop != 0).astype(np.float32), (cols, rows), interpolation=cv2.INTER_AREA) > 0.5
        spread = float(local[1][inside].std()) if inside.sum() > 16 else 0.0
        if spread <= 0:
            return [np.ones_like(normalised)] * 2
        weight = np.zeros_like(normalised)
        weight[oy:oy + rows * DETECT_CELL_PX, ox:ox + cols * DETECT_CELL_PX] = cv2.resize(
            np.clip(local[0] / spread - REGION_Z, 0.0, None), (cols * DETECT_CELL_PX, rows * DETECT_CELL_PX),
            interpolation=cv2.INTER_NEAREST)
        out.append(weight)
    return out


def regional(normalised: np.ndarray, cand: _Candidate) -> _Candidate:
    """The candidate re-folded where the mark is (its share of the picture in ``region``), from the
    normalised residual it was found in; the candidate itself where no part shows the pattern.

    Cross-fitted, so that choosing where to look does not favour noise that happens to look like the
    sync: the weights found with one half of the sync cells (``mark_weights``) fold the picture that
    the *other* half is scored on, and the two correlations are added (an unmarked picture scores as it
    would unweighted). Only the candidate's orientation is scored (its weights hold for it alone). The
    data cells are read from the fold with both weights."""
    weights = mark_weights(normalised, cand)
    if not all(w.any() for w in weights):
        return cand
    k, flip = cand.turns, cand.flip
    corr = 0.0
    for i, weight in enumerate(weights):  # weights from half i fold what half 1 - i is scored on
        tile = orient(whiten_tile(fold(normalised * weight)), k, flip)
        corr = corr + np.fft.irfft2(np.fft.rfft2(tile) * _half_sync_spectra()[1 - i], s=tile.shape)
    idx = int(np.argmax(corr))
    std = float(corr.std())
    z = float(corr.flat[idx] - corr.mean()) / std if std > 0 else 0.0
    both = weights[0] + weights[1]
    tile = orient(whiten_tile(fold(normalised * both)), k, flip)
    inside = both[normalised != 0].astype(np.float64)
    region = float(inside.sum() ** 2 / (inside.size * (inside ** 2).sum())) if inside.any() else 0.0
    return _Candidate(z, divmod(idx, corr.shape[1]), tile, cand.basis, flip, k, region)


def _untouched_tile(height: int, cells_per_height: float) -> float:
    """Tile size in px of a frame ``height`` rows high marked with cells of height / cells_per_height."""
    return TILE * height / cells_per_height


def find_tile(residuals: tuple[np.ndarray, np.ndarray], keep: int | None = None, by_region: bool = True
              ) -> tuple[_Candidate, float, int]:
    """The best candidate over the lattice search and the untouched geometries, each folded whole and, with
    ``by_region``, where the mark is: (candidate, scale, half) where ``half`` is 1 when it was found in the
    half-size residual."""
    full, half = residuals
    h = full.shape[0]
    base = _untouched_tile(h, CELLS_PER_HEIGHT)
    lo, hi = SCALE_RANGE[0] * base, SCALE_RANGE[1] * base
    split = min(hi, 2 * HALF_SIZE_CELL_PX * TILE)  # tiles at least this big (cells of 12 px): half size
    angles = np.deg2rad(np.arange(-ANGLE_RANGE, ANGLE_RANGE + 1e-9, ANGLE_STEP))
    trials: list[tuple[np.ndarray, np.ndarray, int]] = []  # (image, basis, level)
    for level, image, (a, b) in ((0, full, (lo, split)), (1, half, (split, hi))):
        if b <= a * 1.001:
            continue
        f = 0.5 ** level
        sizes = np.geomspace(a * f, b * f, int(np.ceil(np.log(b / a) / np.log1p(SIZE_STEP))) + 1)
        acf = autocorrelation(image, int(min(2.2 * sizes[-1], max(image.shape) - 1)))
        for _, size, angle in lattice_search(acf, sizes, angles, keep or LATTICE_CANDIDATES):
            trials.append((image, refine_basis(acf, size, angle), level))
    for cph in (CELLS_PER_HEIGHT, V1_CELLS_PER_HEIGHT):  # untouched or only resized: no search needed
        size = _untouched_tile(h, cph)
        level = 1 if size > split else 0
        trials.append((half if level else full, np.eye(2) * size * 0.5 ** level, level))
    found = [(_best_orientation(image, basis), image, level) for image, basis, level in trials]
    best, _, best_level = max(found, key=lambda f: f[0].z)
    if by_region and best.z < REGION_SKIP_Z:  # step 3b: where the mark is
        for cand, image, level in found:
            refined = regional(normalise(image, cand.basis), cand)
            if refined.z > best.z:
                best, best_level = refined, level
    scale = float(np.sqrt(abs(np.linalg.det(best.basis)))) * 2 ** best_level / base
    return best, scale, best_level


# -- 4. payload --------------------------------------------------------------------------------------
def soft_coded_bits(aligned_tile: np.ndarray) -> np.ndarray:
    """Per coded bit, the sum over its cells of cell value x chip, normalised: float64 (CODED_BITS,).

    Positive means bit 0 (the cell kept its chip's sign), negative bit 1.
    """
    layout = tile_layout()
    cells = aligned_tile.reshape(TILE, DETECT_CELL_PX, TILE, DETECT_CELL_PX).sum(axis=(1, 3))
    data = ~layout.sync
    votes = np.zeros(CODED_BITS, np.float64)
    np.add.at(votes, layout.bit[data].astype(np.int64), (cells * layout.chips)[data])
    spread = float(np.std(cells[layout.sync] * layout.chips[layout.sync])) or 1.0
    return votes / spread


def _trellis() -> tuple[np.ndarray, np.ndarray]:
    """next_state[s, b] and the 3 output bits out[s, b, :] of the K=7 code (64 states)."""
    n_states = 1 << (CONV_K - 1)
    nxt = np.zeros((n_states, 2), np.int64)
    out = np.zeros((n_states, 2, len(CONV_GENERATORS)), np.float64)
    for s in range(n_states):
        for b in (0, 1):
            reg = (b << (CONV_K - 1)) | s
            nxt[s, b] = reg >> 1
            out[s, b] = [bin(reg & g).count("1") & 1 for g in CONV_GENERATORS]
    return nxt, out


def viterbi_decode(soft: np.ndarray, n_bits: int = MESSAGE_BITS) -> np.ndarray:
    """Soft-decision Viterbi for ``realtime.marking.watermark.conv_encode``: soft (3 * (n + 6),), positive = bit 0.

    The state is the last K-1 inputs; state t is reached only with input bit ``t >> (K-2)`` from the
    two states ``((t mod 2**(K-2)) << 1) | {0, 1}``. Returns the n decoded bits (uint8).
    """
    nxt, out = _trellis()
    n_states = nxt.shape[0]
    signs = 1.0 - 2.0 * out  # (states, 2, 3) expected sign of each output bit
    targets = np.arange(n_states)
    bit_in = targets >> (CONV_K - 2)
    pred0 = (targets & ((1 << (CONV_K - 2)) - 1)) << 1
    pred1 = pred0 | 1
    metric = np.full(n_states, -np.inf)
    metric[0] = 0.0
    steps = n_bits + CONV_K - 1
    back = np.zeros((steps, n_states), np.int64)
    r = len(CONV_GENERATORS)
    for t in range(steps):
        branch = signs @ soft[t * r:(t + 1) * r]  # (states, 2): correlation of each branch's output
        c0 = metric[pred0] + branch[pred0, bit_in]
        c1 = metric[pred1] + branch[pred1, bit_in]
        take1 = c1 > c0
        metric = np.where(take1, c1, c0)
        back[t] = np.where(take1, pred1, pred0)
        if t >= n_bits:  # tail: zero inputs only
            metric[bit_in == 1] = -np.inf
    state = int(np.argmax(metric))
    bits = np.zeros(steps, np.uint8)
    for t in range(steps - 1, -1, -1):
        bits[t] = state >> (CONV_K - 2)
        state = back[t, state]
    return bits[:n_bits]


def decode_tile(aligned_tile: np.ndarray) -> tuple[Payload | None, float, np.ndarray]:
    """Decode a tile aligned on its sync: (payload or None when the CRC fails, coded-bit agreement, soft bits)."""
    soft = soft_coded_bits(aligned_tile)
    bits = viterbi_decode(soft)
    recoded = 1.0 - 2.0 * conv_encode(bits).astype(np.float64)
    agreement = float(np.mean(np.sign(soft) == recoded))
    return Payload.from_message_bits(bits), agreement, soft


def _angle_of(basis: np.ndarray) -> float:
    """How far the picture was turned, degrees counter-clockwise as seen (rows run down, so the lattice's
    angle in array coordinates is the opposite), folded into (-45, 45]."""
    angle = -float(np.degrees(np.arctan2(basis[1, 0], basis[0, 0])))
    return (angle + 45.0) % 90.0 - 45.0


def detect_residuals(residuals: tuple[np.ndarray, np.ndarray], frames: int = 1, by_region: bool = True) -> Detection:
    """Detect in averaged residuals (``ResidualAverage.means()``); ``by_region=False`` folds only whole
    pictures (step 3b off: what the detector did before, for comparison)."""
    best, scale, _ = find_tile(residuals, by_region=by_region)
    aligned = np.roll(best.tile, (-best.shift[0], -best.shift[1]), axis=(0, 1))
    payload, agreement, soft = decode_tile(aligned)
    return Detection(found=payload is not None and best.z >= Z_THRESHOLD, payload=payload, z=best.z, scale=scale,
                     shift=best.shift, bit_agreement=agreement, frames=frames, angle=_angle_of(best.basis),
                     mirrored=best.flip, soft_bits=soft, region=best.region)


def detect_frames(frames) -> Detection:
    """Detect in one still or a window of video frames (BGR or grey uint8, all one size)."""
    acc = ResidualAverage()
    for frame in frames:
        acc.add(frame)
    return detect_residuals(acc.means(), acc.frames)
