"""Full-reference image quality of a generated video against the real one: SSIM and PSNR.

Both take two videos ``(T, H, W, 3)`` uint8 RGB of identical shape, frame ``t`` of one
compared with frame ``t`` of the other, and use ``skimage.metrics``.

* SSIM (↑, in [-1, 1], 1 = identical): Wang, Bovik, Sheikh & Simoncelli, "Image Quality
  Assessment: From Error Visibility to Structural Similarity", IEEE TIP 13(4), 2004.
* PSNR (↑, dB, ``inf`` = identical): peak signal-to-noise ratio for a peak value of 255.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

DATA_RANGE = 255.0
SSIM_WINDOW = 7


def _check_pair(real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    real, fake = np.asarray(real), np.asarray(fake)
    if real.shape != fake.shape:
        raise ValueError(f"real and fake videos differ in shape: {real.shape} vs {fake.shape}")
    for name, video in (("real", real), ("fake", fake)):
        if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8 or len(video) == 0:
            raise ValueError(f"{name} must be (T, H, W, 3) uint8 with T >= 1, got {video.shape} {video.dtype}")
    return real, fake


def ssim(real: np.ndarray, fake: np.ndarray) -> float:
    """Mean over frames of the per-frame SSIM of two RGB videos (↑, 1 = identical).

    Per frame: ``skimage.metrics.structural_similarity(real[t], fake[t], channel_axis=-1,
    data_range=255)`` with the library defaults: a uniform (not Gaussian) 7 x 7 sliding window,
    sample covariance, K1 = 0.01, K2 = 0.03; the SSIM map is averaged over pixels (the
    3-pixel border the window cannot reach excluded) and then over the 3 RGB channels. The
    clip's value is the unweighted mean over its ``T`` frames.

    Args:
        real, fake: ``(T, H, W, 3)`` uint8 RGB videos of identical shape, ``H, W >= 7``.

    Raises:
        ValueError: shapes differ, or not ``(T, H, W, 3)`` uint8.
    """
    real, fake = _check_pair(real, fake)
    scores = [
        structural_similarity(r, f, channel_axis=-1, data_range=DATA_RANGE, win_size=SSIM_WINDOW)
        for r, f in zip(real, fake)
    ]
    return float(np.mean(scores))


def psnr(real: np.ndarray, fake: np.ndarray) -> float:
    """PSNR of a whole clip, from its mean squared error over all frames (↑, dB).

    ``PSNR = 10 * log10(255² / MSE)``, with ``MSE`` the mean of ``(real - fake)²`` over all
    ``T * H * W * 3`` values of the clip (``skimage.metrics.peak_signal_noise_ratio`` on the
    whole video, ``data_range=255``). This is *not* the mean of per-frame PSNRs: one frame that
    happens to be identical (a static baseline's first frame) would make that mean infinite.

    Identical videos (``MSE == 0``) return ``float("inf")``, explicitly and without a warning;
    when averaging over clips, report how many are infinite rather than averaging them.

    Args:
        real, fake: ``(T, H, W, 3)`` uint8 RGB videos of identical shape.

    Raises:
        ValueError: shapes differ, or not ``(T, H, W, 3)`` uint8.
    """
    real, fake = _check_pair(real, fake)
    if np.array_equal(real, fake):
        return float("inf")
    return float(peak_signal_noise_ratio(real, fake, data_range=DATA_RANGE))
