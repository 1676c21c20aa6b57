"""Similarity alignment of faces to a canonical square crop.

Every frame is mapped by a similarity transform (rotation, uniform scale, translation) that sends
three reference points of its 68 iBUG landmarks as close as possible (least squares) to fixed
positions in a square crop of side ``S`` pixels:

=====================  ====================================  ========================
reference point        landmarks (0-based iBUG)              template (x, y) / S
=====================  ====================================  ========================
image-left eye centre  mean of 36-41 (subject's right eye)   (0.375, 0.400)
image-right eye centre mean of 42-47 (subject's left eye)    (0.625, 0.400)
mouth centre           midpoint of the corners 48 and 54     (0.500, 0.710)
=====================  ====================================  ========================

The eye centres are 0.25 S apart and the mouth centre lies 1.24 inter-ocular distances below
their midpoint (the GRID speakers of ``resources/grid_sample`` measure 1.15-1.28). With GRID's
proportions the eyebrows land near y = 0.29 S, the chin near 0.91 S and the jaw corners near
x = 0.22 S and 0.78 S, so the whole face, chin included, fits with some forehead and background,
as in common talking-face crops. The mouth centre is the midpoint of the corners, not of the lips,
so that opening the mouth does not move the crop.

The transform parameters are smoothed in time (centred moving average) so that the crop does
not jitter with landmark noise; frames without landmarks take parameters interpolated from their
neighbours. Pixel coordinates have pixel centres at integers, as in OpenCV.
"""

from __future__ import annotations

import numpy as np

from a2v.errors import A2VError, NoFaceError

TEMPLATE = np.array([[0.375, 0.400], [0.625, 0.400], [0.500, 0.710]], dtype=np.float64)
"""``(3, 2)`` template positions (x, y) of image-left eye centre, image-right eye centre and
mouth centre, as fractions of the crop side."""

# Face box (dlib detector convention, see a2v.face.landmarks.box_from_landmarks) of a GRID face
# aligned to TEMPLATE, as fractions of the crop side (left, top, right, bottom); mean over the
# 18 clips of resources/grid_sample (clip-to-clip spread 0.01-0.02).
TEMPLATE_BOX = (0.188, 0.229, 0.817, 0.857)


def template_points(crop_size: int) -> np.ndarray:
    """``(3, 2)`` float64 template positions in crop pixels for a crop of side ``crop_size``."""
    # Fractions of the side refer to the continuous crop [0, S]; pixel centres sit at integers.
    return TEMPLATE * float(crop_size) - 0.5


def template_box(crop_size: int) -> tuple[float, float, float, float]:
    """Face box ``(left, top, right, bottom)`` in pixels of an aligned crop of side ``crop_size``.

    It is where dlib's face detector would put its box on a face aligned by this module, so
    :func:`a2v.face.landmarks.landmarks_in_box` can measure landmarks on aligned (real or
    generated) crops without running the detector.
    """
    return tuple(float(v) * crop_size - 0.5 for v in TEMPLATE_BOX)


def reference_points(landmarks: np.ndarray) -> np.ndarray:
    """Eye centres and mouth centre of 68 iBUG landmarks.

    Args:
        landmarks: ``(..., 68, 2)`` pixels (x, y).

    Returns:
        ``(..., 3, 2)`` float64: image-left eye centre (mean of 36-41), image-right eye centre
        (mean of 42-47), mouth centre (midpoint of 48 and 54).
    """
    pts = np.asarray(landmarks, np.float64)
    if pts.shape[-2:] != (68, 2):
        raise A2VError(f"landmarks must be (..., 68, 2), got {pts.shape}")
    return np.stack(
        [pts[..., 36:42, :].mean(-2), pts[..., 42:48, :].mean(-2), 0.5 * (pts[..., 48, :] + pts[..., 54, :])],
        axis=-2,
    )


def _similarity_params(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity ``src -> dst`` for a batch (Umeyama, PAMI 1991, closed form in 2-D).

    Args:
        src: ``(T, K, 2)`` points; dst: ``(K, 2)`` points.

    Returns:
        ``(T, 4)`` float64 ``(a, b, tx, ty)`` with matrix ``[[a, -b, tx], [b, a, ty]]``
        (``a = s cos(theta)``, ``b = s sin(theta)``); NaN rows where ``src`` has NaN.
    """
    mu_s = src.mean(axis=1)  # (T, 2)
    mu_d = dst.mean(axis=0)  # (2,)
    xs = src - mu_s[:, None]
    yd = dst - mu_d
    den = (xs**2).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        a = (xs[..., 0] * yd[:, 0] + xs[..., 1] * yd[:, 1]).sum(1) / den
        b = (xs[..., 0] * yd[:, 1] - xs[..., 1] * yd[:, 0]).sum(1) / den
    tx = mu_d[0] - (a * mu_s[:, 0] - b * mu_s[:, 1])
    ty = mu_d[1] - (b * mu_s[:, 0] + a * mu_s[:, 1])
    params = np.stack([a, b, tx, ty], axis=1)
    params[~np.isfinite(params).all(axis=1) | (den <= 0)] = np.nan
    return params


def _to_matrices(params: np.ndarray) -> np.ndarray:
    a, b, tx, ty = params.T
    return np.stack([np.stack([a, -b, tx], 1), np.stack([b, a, ty], 1)], 1).astype(np.float32)


def similarity_matrices(landmarks: np.ndarray, crop_size: int, smooth_window: int = 5) -> np.ndarray:
    """Per-frame similarity transforms from frame pixels to the canonical crop, smoothed in time.

    Args:
        landmarks: ``(T, 68, 2)`` frame pixels (x, y), iBUG order; NaN rows for frames without
            a face.
        crop_size: side ``S`` of the square crop, pixels.
        smooth_window: length in frames of the centred moving average applied to the transform
            parameters ``(s cos, s sin, tx, ty)`` (rounded up to odd; edges repeat the end value);
            ``<= 1`` disables smoothing. Averaging these parameters averages where each frame's
            transform sends any given point.

    Returns:
        ``(T, 2, 3)`` float32 affine matrices ``[[a, -b, tx], [b, a, ty]]`` mapping frame pixels to
        crop pixels (``cv2.warpAffine`` convention). Frames with NaN landmarks get parameters
        linearly interpolated from the nearest frames with landmarks (held at the ends).

    Raises:
        A2VError: bad shapes or ``crop_size < 8``.
        NoFaceError: no frame has finite landmarks.
    """
    from scipy.ndimage import uniform_filter1d

    pts = np.asarray(landmarks, np.float64)
    if pts.ndim != 3 or pts.shape[1:] != (68, 2):
        raise A2VError(f"landmarks must be (T, 68, 2), got {pts.shape}")
    if int(crop_size) < 8:
        raise A2VError(f"crop_size must be >= 8 pixels, got {crop_size}")
    params = _similarity_params(reference_points(pts), template_points(int(crop_size)))
    valid = np.isfinite(params).all(axis=1)
    if not valid.any():
        raise NoFaceError("<landmarks>", "no frame has finite landmarks to align")
    if not valid.all():
        t = np.arange(len(params))
        for j in range(4):
            params[:, j] = np.interp(t, t[valid], params[valid, j])
    window = int(smooth_window)
    if window > 1:
        window += 1 - window % 2
        params = uniform_filter1d(params, size=window, axis=0, mode="nearest")
    return _to_matrices(params)


def transform_points(points: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Apply per-frame 2x3 affine matrices to points.

    Args:
        points: ``(T, N, 2)`` pixels; matrices: ``(T, 2, 3)``.

    Returns:
        ``(T, N, 2)`` float32; NaN stays NaN.
    """
    pts = np.asarray(points, np.float64)
    m = np.asarray(matrices, np.float64)
    return (np.einsum("tij,tnj->tni", m[:, :, :2], pts) + m[:, None, :, 2]).astype(np.float32)


def _warp(image: np.ndarray, matrix: np.ndarray, crop_size: int) -> np.ndarray:
    import cv2

    return cv2.warpAffine(
        np.ascontiguousarray(image), np.asarray(matrix, np.float64), (crop_size, crop_size),
        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE,
    )


def align_clip(
    frames: np.ndarray, landmarks: np.ndarray, crop_size: int = 256, smooth_window: int = 5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Warp every frame to the canonical face crop (``cv2.warpAffine``, bilinear, replicated border).

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB.
        landmarks: ``(T, 68, 2)`` frame pixels; NaN rows allowed (see :func:`similarity_matrices`).
        crop_size: crop side ``S`` in pixels.
        smooth_window: temporal smoothing window in frames (see :func:`similarity_matrices`).

    Returns:
        ``crops`` ``(T, S, S, 3)`` uint8 RGB; ``landmarks_crop`` ``(T, 68, 2)`` float32, the
        landmarks mapped into crop pixels by the same matrices (NaN stays NaN); ``matrices``
        ``(T, 2, 3)`` float32, frame pixels -> crop pixels.

    Raises:
        A2VError: shapes disagree, or frames are not uint8 ``(T, H, W, 3)``.
        NoFaceError: no frame has landmarks.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise A2VError(f"frames must be a (T, H, W, 3) uint8 array, got {frames.shape} {frames.dtype}")
    if len(frames) != len(landmarks):
        raise A2VError(f"{len(frames)} frames but {len(landmarks)} landmark rows")
    crop_size = int(crop_size)
    matrices = similarity_matrices(landmarks, crop_size, smooth_window)
    crops = np.empty((len(frames), crop_size, crop_size, 3), np.uint8)
    for t in range(len(frames)):
        crops[t] = _warp(frames[t], matrices[t], crop_size)
    return crops, transform_points(landmarks, matrices), matrices


def align_image(image: np.ndarray, landmarks: np.ndarray, crop_size: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Align a single photo to the same template (no temporal smoothing).

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        landmarks: ``(68, 2)`` pixels.
        crop_size: crop side ``S`` in pixels.

    Returns:
        ``crop`` ``(S, S, 3)`` uint8, ``landmarks_crop`` ``(68, 2)`` float32 crop pixels,
        ``matrix`` ``(2, 3)`` float32 image pixels -> crop pixels.

    Raises:
        A2VError: bad shapes. NoFaceError: the landmarks are not finite.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise A2VError(f"image must be a (H, W, 3) uint8 array, got {image.shape} {image.dtype}")
    lms = np.asarray(landmarks, np.float64)
    if lms.shape != (68, 2):
        raise A2VError(f"landmarks must be (68, 2), got {lms.shape}")
    crops, lms_crop, matrices = align_clip(image[None], lms[None], crop_size, smooth_window=1)
    return crops[0], lms_crop[0], matrices[0]
