"""Find and read the watermark of ``realtime.marking.watermark`` in frames, images and videos.

Steps, for a still or a window of video frames (``detect_frames``):

1. Each frame's luma is resized so that an unaltered frame has cells of ``DETECT_CELL_PX`` pixels
   (height ``CELLS_PER_HEIGHT * DETECT_CELL_PX``), high-passed (minus a Gaussian blur: the picture's
   smooth parts are interference, the mark is fine-grained), divided by its local standard deviation
   (textured parts would otherwise drown the mark found in flat parts; this doubled the sync z of a
   single 720p still), clipped at a few standard deviations, and averaged over the frames: the mark
   is static, the picture and the codec's noise are not.
2. For each candidate scale (a crop makes the pattern look larger than the frame height says; 1.0
   for an unaltered or resized frame), the average is resampled and *folded* (summed modulo the
   tile) onto one tile; the tile is correlated with the known sync cells by FFT (every translation at
   once). The sync score is a z-score: the peak over the spread of the correlation over all shifts.
3. At the best scale and shift, each data cell's value times its chip is a soft vote for its coded
   bit; soft-decision Viterbi decodes 72 bits, and the CRC-16 says whether they are a payload.

"Found" needs both: sync z >= ``Z_THRESHOLD`` and a matching CRC.
"""

from __future__ import annotations

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
    Payload,
    conv_encode,
    tile_layout,
)

DETECT_CELL_PX = 4
DETECT_HEIGHT = CELLS_PER_HEIGHT * DETECT_CELL_PX  # 360
TILE_PX = TILE * DETECT_CELL_PX  # 128
HIGHPASS_SIGMA = 1.5  # px at detection resolution
LOCAL_SIGMA = 4.0  # px: the neighbourhood whose residual spread normalises each pixel
CLIP_SIGMAS = 3.0
# Scales searched (pattern cell size / DETECT_CELL_PX after the height normalisation): a crop of
# up to ~30% of the height, or a slight upscale after one. Folding a 640-px-wide image at a scale
# 0.3% off smears the cells by half a cell at the edges; hence fine steps of 0.2%.
SCALE_RANGE = (0.92, 1.45)
COARSE_STEP = 0.006
COARSE_KEEP = 3
FINE_STEP = 0.002
Z_THRESHOLD = 7.0  # unmarked inputs: max 6.2, p99 5.6 over 1461 (bench); marked 2-s windows after attacks: min 11.6


@dataclass
class Detection:
    """The outcome for one still or one window of frames.

    found: sync z >= threshold and CRC ok; payload: the decoded payload (None when the CRC failed);
    z: sync z-score; scale / shift: where the tile was found (shift in detection pixels);
    bit_agreement: share of coded bits whose soft vote agrees with the decoded message re-encoded;
    frames: frames averaged.
    """

    found: bool
    payload: Payload | None
    z: float
    scale: float
    shift: tuple[int, int]
    bit_agreement: float
    frames: int
    soft_bits: np.ndarray | None = None  # (CODED_BITS,) soft votes, positive = bit 0 (for analysis)


def _luma(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return frame.astype(np.float32)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)


def residual(frame: np.ndarray) -> np.ndarray:
    """A frame's high-passed, clipped luma at detection resolution: float32 (DETECT_HEIGHT, W')."""
    y = _luma(frame)
    h, w = y.shape
    width = max(TILE_PX, int(round(w * DETECT_HEIGHT / h)))
    interp = cv2.INTER_AREA if h > DETECT_HEIGHT else cv2.INTER_LINEAR
    y = cv2.resize(y, (width, DETECT_HEIGHT), interpolation=interp)
    r = y - cv2.GaussianBlur(y, (0, 0), HIGHPASS_SIGMA)
    r /= np.sqrt(cv2.GaussianBlur(r * r, (0, 0), LOCAL_SIGMA)) + 1.0
    limit = CLIP_SIGMAS * float(r.std()) + 1e-6
    return np.clip(r, -limit, limit, out=r)


class ResidualAverage:
    """Running sum of ``residual`` over frames of one size (frames of another size start a new sum)."""

    def __init__(self) -> None:
        self.total: np.ndarray | None = None
        self.frames = 0

    def add(self, frame: np.ndarray) -> None:
        r = residual(frame)
        if self.total is None or self.total.shape != r.shape:
            self.total, self.frames = r.astype(np.float64), 0
        else:
            self.total += r
        self.frames += 1

    def mean(self) -> np.ndarray:
        if self.total is None:
            raise ValueError("no frames added")
        return (self.total / self.frames).astype(np.float32)


def fold(image: np.ndarray, period: int | None = None) -> np.ndarray:
    """Sum ``image`` modulo ``period`` (default TILE_PX) in both axes -> (period, period) float64 (zero-padded edges)."""
    period = period or TILE_PX
    h, w = image.shape
    ph, pw = -h % period, -w % period
    padded = np.pad(image, ((0, ph), (0, pw))) if ph or pw else image
    return padded.reshape((h + ph) // period, period, (w + pw) // period, period).sum(axis=(0, 2), dtype=np.float64)


@lru_cache(maxsize=4)
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


def scale_grid(lo: float = SCALE_RANGE[0], hi: float = SCALE_RANGE[1], step: float = COARSE_STEP) -> np.ndarray:
    """Log-spaced scales over [lo, hi], ``step`` apart (relative)."""
    n = int(np.ceil(np.log(hi / lo) / np.log1p(step))) + 1
    return np.geomspace(lo, hi, n)


def _rescaled(image: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return image
    h, w = image.shape
    size = (max(8, int(round(w / scale))), max(8, int(round(h / scale))))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale > 1 else cv2.INTER_LINEAR)


def _score(image: np.ndarray, scale: float, cell_px: int) -> tuple[float, tuple[int, int], np.ndarray]:
    tile = fold(_rescaled(image, scale), TILE * cell_px)
    z, shift = sync_scores(tile, _sync_spectrum(cell_px))
    return z, shift, tile


def find_tile(mean_residual: np.ndarray, scales: np.ndarray | None = None) -> tuple[float, float, tuple[int, int], np.ndarray]:
    """Search scales for the sync pattern: (z, scale, shift, tile aligned on its sync (TILE_PX, TILE_PX)).

    ``scales`` given: exactly those, at full detection resolution. Otherwise 1.0 (an unaltered or
    resized frame), then a coarse search at half resolution over SCALE_RANGE in COARSE_STEP steps, then
    the best COARSE_KEEP coarse scales refined at full resolution in FINE_STEP steps (5x faster than
    a full-resolution sweep, same answers on the benchmark's crops).
    """
    if scales is None:
        half = cv2.resize(mean_residual, (mean_residual.shape[1] // 2, mean_residual.shape[0] // 2),
                          interpolation=cv2.INTER_AREA)
        coarse = sorted(scale_grid(), key=lambda s: -_score(half, float(s), DETECT_CELL_PX // 2)[0])
        fine = [1.0] + [float(s) * (1 + FINE_STEP * k) for s in coarse[:COARSE_KEEP] for k in range(-3, 4)]
    else:
        fine = [float(s) for s in scales]
    best = max(((*_score(mean_residual, s, DETECT_CELL_PX), s) for s in fine), key=lambda r: r[0])
    z, shift, tile, scale = best
    aligned = np.roll(tile, (-shift[0], -shift[1]), axis=(0, 1))
    return z, scale, shift, aligned


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


def detect_mean(mean_residual: np.ndarray, frames: int = 1, scales: np.ndarray | None = None) -> Detection:
    """Detect in an averaged residual (see ``ResidualAverage``)."""
    z, scale, shift, aligned = find_tile(mean_residual, scales)
    payload, agreement, soft = decode_tile(aligned)
    return Detection(found=payload is not None and z >= Z_THRESHOLD, payload=payload, z=z, scale=scale,
                     shift=shift, bit_agreement=agreement, frames=frames, soft_bits=soft)


def detect_frames(frames, scales: np.ndarray | None = None) -> Detection:
    """Detect in one still or a window of video frames (BGR or grey uint8, all one size)."""
    acc = ResidualAverage()
    for frame in frames:
        acc.add(frame)
    return detect_mean(acc.mean(), acc.frames, scales)
