"""MAN inference: one reference face + per-frame audio features → video frames.

Generation is autoregressive (MAN §3.0.1): for frame t the motion predictor reads the previous 5
**generated** frames (at the start, the reference frame repeated) and mel[t]; the generator then
makes frame t from the reference, that predicted motion and the audio features of t. Networks run
in eval mode (BatchNorm running statistics), in float32. :func:`synthesize_stream` takes the
features in chunks and yields the frames in blocks (the recipe's ``generate`` concatenates them).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import numpy as np
import torch
from torch import nn

from a2v.models.man import ManConfig
from a2v.recipes.base import check_reference, feature_blocks, to_image_tensor, to_uint8_frames
from a2v.features.normalizer import FeatureNormalizer

FEATURES = ("mfcc", "mel", "f0_bin", "energy_bin")
"""The shard features MAN generation reads."""


def synthesize_stream(
    cfg: ManConfig,
    networks: Mapping[str, nn.Module],
    normalizer: FeatureNormalizer,
    reference: np.ndarray,
    feature_chunks: Iterable[Mapping[str, np.ndarray]],
    n_prev: int,
    device: torch.device | str = "cpu",
    batch: int = 1,
) -> Iterator[np.ndarray]:
    """Generate a talking-face clip from chunks of its features, block by block: the last
    ``n_prev`` generated frames are carried from block to block (and chunk to chunk), so the
    frames do not depend on the chunking and memory does not grow with the clip's length.

    Args:
        cfg: the generator's config.
        networks: ``generator`` and ``predictor`` (eval mode).
        normalizer: MFCC/mel standardisation fitted on the training clips.
        reference: ``(S, S, 3)`` uint8 RGB aligned face crop, S = ``cfg.image_size``.
        feature_chunks: consecutive chunks of per-frame audio features on the shard's time base —
            ``mfcc (n, 20, 13)``, ``mel (n, 256)`` (raw: the normaliser is applied here),
            ``f0_bin (n,)`` and ``energy_bin (n,)`` integers in 0..255.
        n_prev: generated frames the predictor reads.
        device: where to run.
        batch: frames generated together. ``1`` (default) is exact autoregression. With
            ``batch = b > 1`` the frames of each block of ``b`` (counted from the clip's first
            frame) share the history available at the block's start — faster, an approximation.

    Yields:
        ``(n, S, S, 3)`` uint8 RGB frames, ``n = batch`` but for the last block.

    Raises (when iterated):
        ValueError: wrong reference shape/dtype, missing features, mismatched lengths or shapes,
            no frame, ``batch < 1``.
    """
    s = cfg.image_size
    reference = check_reference(reference, s)
    shapes = {"mfcc": tuple(cfg.mfcc_shape), "mel": (cfg.mel_dim,), "f0_bin": (), "energy_bin": ()}
    device = torch.device(device)
    G, P = networks["generator"].to(device).eval(), networks["predictor"].to(device).eval()
    ref = to_image_tensor(reference).to(device)
    history = [ref] * n_prev
    memo: dict = {}  # the reference's γ/β of every MAN block, computed once per clip
    for block in feature_blocks(feature_chunks, FEATURES, batch, shapes):
        mfcc = torch.from_numpy(normalizer.mfcc(block["mfcc"].astype(np.float32))).to(device)
        mel = torch.from_numpy(normalizer.mel(block["mel"].astype(np.float32))).to(device)
        f0 = torch.from_numpy(block["f0_bin"].astype(np.int64)).to(device)
        energy = torch.from_numpy(block["energy_bin"].astype(np.int64)).to(device)
        b = len(mfcc)
        with torch.inference_mode():
            motion = None
            if cfg.use_motion:
                prev = torch.cat(history[-n_prev:], dim=1).expand(b, -1, -1, -1)
                motion = P(prev, mel)
            frames = G(ref.expand(b, -1, -1, -1), motion, mfcc, mel, f0, energy, memo=memo)["frame"]
        history = (history + list(frames.split(1)))[-n_prev:]
        yield to_uint8_frames(frames)
