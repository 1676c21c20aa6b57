"""CPBD: no-reference sharpness, the Cumulative Probability of Blur Detection (↑ sharper).

Narvekar, N. D. & Karam, L. J. "A No-Reference Image Blur Metric Based on the Cumulative
Probability of Blur Detection (CPBD)." IEEE Transactions on Image Processing 20(9):2678-2683, 2011.

Definition (as in the authors' reference implementation, whose Python port most talking-face
papers run; this module re-implements it, vectorised, and reproduces its values):

1. Edges. Canny edges of the grayscale image (``skimage.feature.canny``, defaults: sigma 1,
   hysteresis thresholds 0.1 / 0.2 on the 0-255 float image) decide which blocks are *edge
   blocks*. Edge widths are measured at the vertical edges found by a Sobel operator: the
   horizontal-derivative Sobel kernel normalised to unit L1 norm, squared response thresholded
   at ``2 * sqrt(mean(response²))`` and thinned to local maxima along rows or columns
   (Octave's ``edge(I, "sobel", [], "vertical")``).
2. Edge width (Marziliano et al. 2002). Gradient angle ``atan2(gy, gx)`` from ``np.gradient``,
   quantised to multiples of 45°; at each Sobel edge pixel whose angle is 0° or ±180°, the width
   is ``1 + 1 +`` the number of strictly monotone steps (in the edge's direction) on each side,
   starting one pixel away from the edge pixel, each side capped at 101.
3. Blocks of 64 x 64 pixels (only whole blocks; the right/bottom remainder is ignored). A block
   is an edge block when more than 0.2 % of its pixels are Canny edges. Block contrast
   ``C = max - min`` of its pixels; just-noticeable blur width ``w_JNB = 5`` for ``C <= 50``,
   ``3`` otherwise.
4. For every measured edge of an edge block, ``P_BLUR = 1 - exp(-|w / w_JNB| ** 3.6)``, rounded
   to a percent bucket (``round(100 * P_BLUR)``, half to even).
5. ``CPBD = P(P_BLUR <= 63 %)``: the fraction of those edges whose bucket is at most 63.
   Since ``1 - exp(-1) = 0.632`` and widths are whole pixels, this is the fraction of edges
   no wider than their block's ``w_JNB``.

The value lies in [0, 1], higher is sharper. An image without any measured edge in an edge
block gets 0.0 (the reference implementation's value).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import convolve
from skimage.feature import canny

BLOCK_SIZE = 64
EDGE_BLOCK_THRESHOLD = 0.002
BETA = 3.6
P_BLUR_MAX_PERCENT = 63
CONTRAST_SPLIT = 50
WIDTH_JNB_LOW_CONTRAST = 5.0
WIDTH_JNB_HIGH_CONTRAST = 3.0
_MAX_MARGIN = 100  # the reference implementation stops looking after 101 steps per side

# ITU-R BT.601 luma in 16-bit fixed point, exactly as PIL's ``Image.convert("L")``.
_LUMA_WEIGHTS = np.array([19595, 38470, 7471], dtype=np.uint32)


def rgb_to_luma(frames: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma ``(299 R + 587 G + 114 B) / 1000`` of RGB uint8 pixels, as uint8.

    Same integer arithmetic as PIL's ``convert("L")`` (what the reference CPBD reads images
    with), so values match it bit for bit. Accepts any ``(..., 3)`` uint8 array.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.shape[-1] != 3:
        raise ValueError(f"expected (..., 3) uint8 RGB, got {frames.shape} {frames.dtype}")
    luma = (frames.astype(np.uint32) @ _LUMA_WEIGHTS + 0x8000) >> 16
    return luma.astype(np.uint8)


def cpbd(gray: np.ndarray) -> float:
    """CPBD sharpness of one grayscale image (↑ sharper), in [0, 1].

    Args:
        gray: ``(H, W)`` uint8 grayscale (luma) image, at least 64 x 64 pixels.

    Returns:
        The fraction of edges, in edge blocks, whose probability of blur detection is at most
        63 % (see the module docstring for every step).

    Raises:
        ValueError: not a 2-D uint8 image, or smaller than one 64 x 64 block.
    """
    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"cpbd expects a (H, W) uint8 image, got {gray.shape} {gray.dtype}")
    if gray.shape[0] < BLOCK_SIZE or gray.shape[1] < BLOCK_SIZE:
        raise ValueError(f"cpbd needs at least {BLOCK_SIZE}x{BLOCK_SIZE} pixels, got {gray.shape}")
    image = gray.astype(np.float64)
    # Pinned to skimage's defaults for a float image, which the reference implementation uses.
    canny_edges = canny(image, sigma=1.0, low_threshold=0.1, high_threshold=0.2)
    widths = _edge_widths(_sobel_vertical_edges(image), image)
    return _sharpness(image, canny_edges, widths)


def cpbd_video(frames: np.ndarray) -> float:
    """Mean over frames of :func:`cpbd` of each frame's BT.601 luma (↑ sharper), in [0, 1].

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB video, ``T >= 1``.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"cpbd_video expects (T, H, W, 3) uint8 with T >= 1, got {frames.shape} {frames.dtype}")
    luma = rgb_to_luma(frames)
    return float(np.mean([cpbd(frame) for frame in luma]))


def _sobel_vertical_edges(image: np.ndarray) -> np.ndarray:
    """Octave's ``edge(image, "sobel", [], "vertical")``: thinned, thresholded Sobel-x edges."""
    kernel = np.array([[0.25, 0.5, 0.25], [0.0, 0.0, 0.0], [-0.25, -0.5, -0.25]])
    kernel /= np.abs(kernel).sum()
    strength = np.square(convolve(image, kernel.T))  # scipy's default 'reflect' border
    strength[strength <= 2.0 * np.sqrt(strength.mean())] = 0.0
    pad = np.pad(strength, 1)  # zeros outside, as the reference's thinning
    centre = pad[1:-1, 1:-1]
    along_rows = (centre > pad[1:-1, :-2]) & (centre > pad[1:-1, 2:])
    along_cols = (centre > pad[:-2, 1:-1]) & (centre > pad[2:, 1:-1])
    return along_rows | along_cols


def _run_left(cond: np.ndarray) -> np.ndarray:
    """Per row, length of the run of True ending at each column (inclusive), going left."""
    cols = np.arange(cond.shape[1])
    last_false = np.maximum.accumulate(np.where(cond, -1, cols), axis=1)
    return cols - last_false


def _run_right(cond: np.ndarray) -> np.ndarray:
    """Per row, length of the run of True starting at each column (inclusive), going right."""
    return _run_left(cond[:, ::-1])[:, ::-1]


def _edge_widths(edges: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Marziliano edge widths at vertical edges; 0 where no width is measured."""
    height = image.shape[0]
    widths = np.zeros(image.shape)
    grad_y, grad_x = np.gradient(image)
    with np.errstate(divide="ignore", invalid="ignore"):
        angles = np.where(grad_x != 0, np.degrees(np.arctan2(grad_y, grad_x)), 0.0)
    if not np.any(angles):
        return widths
    quantised = 45.0 * np.round(angles / 45.0)

    # step[r, c] = image[r, c + 1] - image[r, c] (W - 1 columns). The left run lengths get a
    # leading 0 so that index c - 2 = -1 (left border) reads "no step"; the right ones a
    # trailing 0 so that c + 1 = W - 1 (right border) does.
    step = np.diff(image, axis=1)
    zero = np.zeros((height, 1), dtype=np.int64)
    dec_left = np.hstack([zero, _run_left(step < 0)])
    inc_left = np.hstack([zero, _run_left(step > 0)])
    dec_right = np.hstack([_run_right(step < 0), zero])
    inc_right = np.hstack([_run_right(step > 0), zero])

    inner = np.zeros(image.shape, dtype=bool)
    inner[1:-1, 1:-1] = edges[1:-1, 1:-1]
    rows, cols = np.nonzero(inner)
    angle = quantised[rows, cols]
    falling = np.abs(angle) == 180  # intensity decreases from left to right
    rising = angle == 0
    left_idx, right_idx = cols - 1, cols + 1  # (col - 2) + 1 after the left padding; col + 1
    left = np.where(falling, dec_left[rows, left_idx], inc_left[rows, left_idx])
    right = np.where(falling, dec_right[rows, right_idx], inc_right[rows, right_idx])
    measured = falling | rising
    w = np.minimum(left, _MAX_MARGIN) + np.minimum(right, _MAX_MARGIN) + 2
    widths[rows[measured], cols[measured]] = w[measured]
    return widths


def _sharpness(image: np.ndarray, canny_edges: np.ndarray, widths: np.ndarray) -> float:
    n_by, n_bx = image.shape[0] // BLOCK_SIZE, image.shape[1] // BLOCK_SIZE
    crop = (slice(0, n_by * BLOCK_SIZE), slice(0, n_bx * BLOCK_SIZE))

    def blocks(a: np.ndarray) -> np.ndarray:  # (n_by, n_bx, 64 * 64)
        a = a[crop].reshape(n_by, BLOCK_SIZE, n_bx, BLOCK_SIZE).swapaxes(1, 2)
        return a.reshape(n_by, n_bx, BLOCK_SIZE * BLOCK_SIZE)

    img_b, edge_b, width_b = blocks(image), blocks(canny_edges), blocks(widths)
    is_edge_block = np.count_nonzero(edge_b, axis=-1) > BLOCK_SIZE * BLOCK_SIZE * EDGE_BLOCK_THRESHOLD
    contrast = np.floor(img_b.max(axis=-1) - img_b.min(axis=-1))
    w_jnb = np.where(contrast <= CONTRAST_SPLIT, WIDTH_JNB_LOW_CONTRAST, WIDTH_JNB_HIGH_CONTRAST)

    selected = is_edge_block[..., None] & (width_b != 0)
    ratio = width_b / w_jnb[..., None]
    p_blur = 1.0 - np.exp(-(np.abs(ratio[selected]) ** BETA))
    if p_blur.size == 0:
        return 0.0
    buckets = np.rint(p_blur * 100.0)
    return float(np.count_nonzero(buckets <= P_BLUR_MAX_PERCENT) / p_blur.size)
