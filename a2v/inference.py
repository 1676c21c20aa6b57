"""MAN inference: one reference face + per-frame audio features → video frames.

Generation is autoregressive (MAN §3.0.1): for frame t the motion predictor reads the previous 5
**generated** frames (at the start, the reference frame repeated) and mel[t]; the generator then
makes frame t from the reference, that predicted motion and the audio features of t. Networks run
in eval mode (BatchNorm running statistics), in float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from a2v.models.man import ManConfig, ManGenerator
from a2v.training.checkpoint import load_checkpoint, models_from_checkpoint
from a2v.training.data import N_PREV, FeatureNormalizer


@dataclass
class Bundle:
    """Everything :func:`synthesize` needs, loaded from a training checkpoint.

    Attributes:
        generator: :class:`ManGenerator` in eval mode.
        predictor: flow or keypoint predictor in eval mode.
        normalizer: MFCC/mel standardisation fitted on the training clips.
        model_config: the generator's :class:`ManConfig`.
        config: the full config dict the checkpoint was trained with.
        phase_name, step: where the checkpoint was taken.
    """

    generator: ManGenerator
    predictor: nn.Module
    normalizer: FeatureNormalizer
    model_config: ManConfig
    config: dict
    phase_name: str
    step: int


def load_bundle(checkpoint_path: str | Path, device: torch.device | str = "cpu") -> Bundle:
    """Load generator, predictor, normaliser and config from a ``checkpoint.pt`` (or ``last.pt``).

    Raises:
        FileNotFoundError, ValueError: see :func:`a2v.training.checkpoint.load_checkpoint`.
    """
    state = load_checkpoint(checkpoint_path, map_location="cpu")
    models = models_from_checkpoint(state)
    device = torch.device(device)
    return Bundle(
        generator=models.generator.to(device).eval(),
        predictor=models.predictor.to(device).eval(),
        normalizer=FeatureNormalizer.from_state_dict(state["normalizer"]),
        model_config=models.config,
        config=state["config"],
        phase_name=str(state.get("phase_name", "")),
        step=int(state.get("step", 0)),
    )


def synthesize(
    bundle: Bundle,
    reference: np.ndarray,
    features: dict,
    device: torch.device | str = "cpu",
    batch: int = 1,
) -> np.ndarray:
    """Generate a talking-face clip.

    Args:
        bundle: from :func:`load_bundle`.
        reference: ``(S, S, 3)`` uint8 RGB aligned face crop, S = the model's ``image_size``.
        features: per-frame audio features on the shard's time base — ``mfcc (T, 20, 13)``,
            ``mel (T, 256)`` (raw, not standardised: the bundle's normaliser is applied here),
            ``f0_bin (T,)`` and ``energy_bin (T,)`` integers in 0..255.
        device: where to run (the bundle's networks are moved there).
        batch: frames generated together. ``1`` (default) is exact autoregression. With
            ``batch = b > 1`` the frames of each block of ``b`` share the history available at the
            block's start (the 5 frames before it) — faster, an approximation.

    Returns:
        ``(T, S, S, 3)`` uint8 RGB frames.

    Raises:
        ValueError: wrong reference shape/dtype, missing features, mismatched lengths or shapes.
    """
    cfg = bundle.model_config
    s = cfg.image_size
    reference = np.asarray(reference)
    if reference.shape != (s, s, 3) or reference.dtype != np.uint8:
        raise ValueError(f"reference must be ({s}, {s}, 3) uint8, got {reference.shape} {reference.dtype}")
    need = {"mfcc": (None, *cfg.mfcc_shape), "mel": (None, cfg.mel_dim), "f0_bin": (None,), "energy_bin": (None,)}
    arrays = {}
    for name, shape in need.items():
        if name not in features:
            raise ValueError(f"features lack {name!r}; need {sorted(need)}")
        a = np.asarray(features[name])
        if a.ndim != len(shape) or tuple(a.shape[1:]) != tuple(shape[1:]):
            raise ValueError(f"features[{name!r}] must have shape (T, {', '.join(map(str, shape[1:]))}), got {a.shape}")
        arrays[name] = a
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"feature lengths differ: {lengths}")
    n = next(iter(lengths.values()))
    if n < 1:
        raise ValueError("features hold no frame")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")

    device = torch.device(device)
    G = bundle.generator.to(device).eval()
    P = bundle.predictor.to(device).eval()
    norm = bundle.normalizer
    mfcc = torch.from_numpy(norm.mfcc(arrays["mfcc"].astype(np.float32))).to(device)
    mel = torch.from_numpy(norm.mel(arrays["mel"].astype(np.float32))).to(device)
    f0 = torch.from_numpy(arrays["f0_bin"].astype(np.int64)).to(device)
    energy = torch.from_numpy(arrays["energy_bin"].astype(np.int64)).to(device)
    ref = torch.from_numpy(reference).to(device).float().div(127.5).sub(1.0).permute(2, 0, 1).unsqueeze(0)

    history = [ref] * N_PREV
    out = np.empty((n, s, s, 3), np.uint8)
    with torch.inference_mode():
        for t0 in range(0, n, batch):
            sl = slice(t0, min(n, t0 + batch))
            b = sl.stop - sl.start
            motion = None
            if cfg.use_motion:
                prev = torch.cat(history[-N_PREV:], dim=1).expand(b, -1, -1, -1)
                motion = P(prev, mel[sl])
            frames = G(ref.expand(b, -1, -1, -1), motion, mfcc[sl], mel[sl], f0[sl], energy[sl])["frame"]
            history.extend(frames.split(1))
            history = history[-N_PREV:]
            out[sl] = frames.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return out
