"""MAN inference: one reference face + per-frame audio features → video frames.

Generation is autoregressive (MAN §3.0.1): for frame t the motion predictor reads the previous 5
**generated** frames (at the start, the reference frame repeated) and mel[t]; the generator then
makes frame t from the reference, that predicted motion and the audio features of t. Networks run
in eval mode (BatchNorm running statistics), in float32.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from a2v.models.man import ManConfig
from a2v.recipes.base import check_features, check_reference, to_image_tensor, to_uint8_frames
from a2v.features.normalizer import FeatureNormalizer

FEATURES = ("mfcc", "mel", "f0_bin", "energy_bin")
"""The shard features MAN generation reads."""


def synthesize(
    cfg: ManConfig,
    networks: Mapping[str, nn.Module],
    normalizer: FeatureNormalizer,
    reference: np.ndarray,
    features: Mapping[str, np.ndarray],
    n_prev: int,
    device: torch.device | str = "cpu",
    batch: int = 1,
) -> np.ndarray:
    """Generate a talking-face clip.

    Args:
        cfg: the generator's config.
        networks: ``generator`` and ``predictor`` (eval mode).
        normalizer: MFCC/mel standardisation fitted on the training clips.
        reference: ``(S, S, 3)`` uint8 RGB aligned face crop, S = ``cfg.image_size``.
        features: per-frame audio features on the shard's time base — ``mfcc (T, 20, 13)``,
            ``mel (T, 256)`` (raw: the normaliser is applied here), ``f0_bin (T,)`` and
            ``energy_bin (T,)`` integers in 0..255.
        n_prev: generated frames the predictor reads.
        device: where to run.
        batch: frames generated together. ``1`` (default) is exact autoregression. With
            ``batch = b > 1`` the frames of each block of ``b`` share the history available at the
            block's start — faster, an approximation.

    Returns:
        ``(T, S, S, 3)`` uint8 RGB frames.

    Raises:
        ValueError: wrong reference shape/dtype, missing features, mismatched lengths or shapes.
    """
    s = cfg.image_size
    reference = check_reference(reference, s)
    arrays = check_features(features, FEATURES, {"mfcc": tuple(cfg.mfcc_shape), "mel": (cfg.mel_dim,), "f0_bin": (), "energy_bin": ()})
    n = len(arrays["mfcc"])
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    device = torch.device(device)
    G, P = networks["generator"].to(device).eval(), networks["predictor"].to(device).eval()
    mfcc = torch.from_numpy(normalizer.mfcc(arrays["mfcc"].astype(np.float32))).to(device)
    mel = torch.from_numpy(normalizer.mel(arrays["mel"].astype(np.float32))).to(device)
    f0 = torch.from_numpy(arrays["f0_bin"].astype(np.int64)).to(device)
    energy = torch.from_numpy(arrays["energy_bin"].astype(np.int64)).to(device)
    ref = to_image_tensor(reference).to(device)

    history = [ref] * n_prev
    out = np.empty((n, s, s, 3), np.uint8)
    with torch.inference_mode():
        for t0 in range(0, n, batch):
            sl = slice(t0, min(n, t0 + batch))
            b = sl.stop - sl.start
            motion = None
            if cfg.use_motion:
                prev = torch.cat(history[-n_prev:], dim=1).expand(b, -1, -1, -1)
                motion = P(prev, mel[sl])
            frames = G(ref.expand(b, -1, -1, -1), motion, mfcc[sl], mel[sl], f0[sl], energy[sl])["frame"]
            history.extend(frames.split(1))
            history = history[-n_prev:]
            out[sl] = to_uint8_frames(frames)
    return out
