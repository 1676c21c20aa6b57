"""The LSE-C / LSE-D judge: a trained SyncNet (:mod:`a2v.models.syncnet`) with its MFCC
standardisation, scoring aligned face crops (real or generated) against their audio over ±15-frame
offsets (:mod:`a2v.metrics.sync`).

Weights: an a2v checkpoint of the ``syncnet`` run (:mod:`a2v.training.syncnet`) or of the earlier
``a2v-syncnet`` format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from a2v.face.mouth import mouth_crops
from a2v.judges.lipreader import mouths_to_tensor
from a2v.metrics.sync import lse, offset_distances
from a2v.models.syncnet import SyncNet, SyncNetConfig
from a2v.features.normalizer import FeatureNormalizer

SYNCNET = "syncnet"
"""The name a SyncNet's checkpoints carry (``checkpoint["recipe"]``)."""
LEGACY_FORMAT = "a2v-syncnet"


class SyncScorer:
    """A trained SyncNet with its MFCC standardisation, scoring clips by LSE-D / LSE-C / offset.

    Args:
        model: the network (eval mode is set); normalizer: its MFCC standardisation; device.
        max_offset: offsets searched, ±frames (15 as in syncnet_python and Wav2Lip).
    """

    def __init__(self, model: SyncNet, normalizer: FeatureNormalizer, device: torch.device | str = "cpu", max_offset: int = 15):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.normalizer = normalizer
        self.max_offset = max_offset

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu") -> "SyncScorer":
        """From an a2v ``syncnet`` checkpoint (or the legacy ``a2v-syncnet`` format).

        Raises:
            FileNotFoundError, ValueError: missing file or another kind of checkpoint.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: SyncNet checkpoint not found")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"{path}: not an a2v SyncNet checkpoint")
        if state.get("format") == "a2v" and state.get("recipe") == SYNCNET:
            config, weights, norm = state["config"]["model"], state["networks"][SYNCNET], state["state"]["normalizer"]
        elif state.get("format") == LEGACY_FORMAT:
            config, weights, norm = state["model_config"], state["model"], state["normalizer"]
        else:
            raise ValueError(f"{path}: not an a2v SyncNet checkpoint (format {state.get('format')!r}, recipe {state.get('recipe')!r})")
        model = SyncNet(SyncNetConfig.from_dict(config))
        model.load_state_dict(weights)
        return cls(model, FeatureNormalizer.from_state_dict(norm), device)

    def score_tensors(self, mouths: torch.Tensor, mfcc: torch.Tensor) -> dict[str, float]:
        """``mouths (T, 3, H, W)`` float, standardised ``mfcc (T, 20, 13)`` → ``{"lse_d", "lse_c", "offset"}``."""
        d = offset_distances(self.model, mouths.to(self.device), mfcc.to(self.device), self.max_offset)
        return lse(d, self.max_offset)

    def score(self, aligned: np.ndarray, mfcc: np.ndarray) -> dict[str, float]:
        """Score a clip of ``(T, S, S, 3)`` uint8 aligned crops (real or generated) against its raw ``(T, 20, 13)`` shard MFCCs.

        Raises:
            ValueError: lengths differ or fewer than 5 frames.
        """
        cfg = self.model.cfg
        mouths = mouths_to_tensor(mouth_crops(aligned, cfg.mouth_width, cfg.mouth_height)).permute(1, 0, 2, 3)
        return self.score_tensors(mouths, torch.from_numpy(self.normalizer.mfcc(mfcc)))
