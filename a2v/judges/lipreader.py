"""The WER judge: a trained LipNet (:mod:`a2v.models.lipreader`) that reads lips from aligned face
crops, real or generated, and decodes with its configured decoder (GRID-grammar Viterbi or greedy
CTC, :mod:`a2v.judges.ctc`).

Evaluation imports the judges from here (:mod:`a2v.judges`), never from training. Weights: an a2v
checkpoint of the ``lipnet`` run (:mod:`a2v.training.lipreader`), a checkpoint of the earlier
``a2v-lipnet`` format, or a bare torch state dict of :class:`~a2v.models.lipreader.LipNet`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from a2v.face.mouth import mouth_crops
from a2v.judges.ctc import GrammarDecoder, greedy_decode
from a2v.models.lipreader import DECODERS, LipNet, LipNetConfig

LIPNET = "lipnet"
"""The name a lip-reader's checkpoints carry (``checkpoint["recipe"]``)."""
LEGACY_FORMAT = "a2v-lipnet"
NON_WORDS = ("sil", "sp")
"""GRID alignment markers for silence and short pause, not spoken words."""


def clip_sentence(words: Sequence[str]) -> str:
    """The spoken sentence of a clip's aligned words (``sil``/``sp`` dropped), e.g. ``"bin blue at f two now"``."""
    return " ".join(w.lower() for w in words if w.lower() not in NON_WORDS)


def mouths_to_tensor(mouths: np.ndarray) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 → ``(3, T, H, W)`` float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(mouths)).permute(3, 0, 1, 2).float().div(127.5).sub(1.0)


def lipnet_weights(state: dict) -> tuple[dict, dict] | None:
    """``(model config, state dict)`` of a loaded lip-reader checkpoint (a2v or legacy), else ``None``."""
    if state.get("format") == "a2v" and state.get("recipe") == LIPNET:
        return dict((state.get("config") or {}).get("model") or {}), state["networks"][LIPNET]
    if state.get("format") == LEGACY_FORMAT:
        return dict(state["model_config"]), state["model"]
    return None


class LipReader:
    """A trained LipNet in eval mode that transcribes mouth-crop sequences with the model's
    decoder (``cfg.decoder``: GRID-grammar Viterbi or greedy CTC best path).

    Args:
        model: the network (moved to ``device``, eval mode).
        device: where it runs.
    """

    def __init__(self, model: LipNet, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.cfg = model.cfg
        self.grammar = GrammarDecoder.grid()

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu") -> "LipReader":
        """From an a2v ``lipnet`` checkpoint (or the legacy ``a2v-lipnet`` format), or a bare torch state dict of :class:`LipNet` with the
        default config; BatchNorm, where the config does not say, when the weights have its running
        statistics.

        Raises:
            FileNotFoundError: no such file.
            ValueError: neither format, or weights that do not fit.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: lip-reader weights not found")
        state = torch.load(path, map_location="cpu", weights_only=True)
        found = lipnet_weights(state) if isinstance(state, dict) else None
        if found is not None:
            config, weights = found
        elif isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values()):
            config, weights = {}, state
        else:
            raise ValueError(f"{path}: not an a2v lip-reader checkpoint or a LipNet state dict")
        # weights saved without a batch_norm setting (bare dicts, checkpoints older than it) say it themselves
        config.setdefault("batch_norm", any(k.endswith("running_mean") for k in weights))
        model = LipNet(LipNetConfig.from_dict(config))
        try:
            model.load_state_dict(weights)
        except RuntimeError as exc:
            raise ValueError(f"{path}: weights do not fit a2v's LipNet ({exc})") from exc
        return cls(model, device)

    @torch.no_grad()
    def log_probs(self, mouths: np.ndarray) -> torch.Tensor:
        """``(T, 28)`` float32 CPU CTC log-probabilities of one ``(T, H, W, 3)`` uint8 mouth-crop clip."""
        return self.model(mouths_to_tensor(mouths)[None].to(self.device))[:, 0].float().cpu()

    def transcribe(self, mouth_clips: Sequence[np.ndarray], decoder: str | None = None) -> list[str]:
        """Sentences read from ``(T, H, W, 3)`` uint8 mouth-crop clips (H × W = the model's mouth size).

        Args:
            decoder: ``"grid_grammar"`` or ``"greedy"``; ``None``: the model's ``cfg.decoder``.

        Raises:
            ValueError: an unknown ``decoder``.
        """
        return [self.decode(self.log_probs(mouths), decoder) for mouths in mouth_clips]

    def decode(self, log_probs: torch.Tensor, decoder: str | None = None) -> str:
        """One sentence from ``(T, 28)`` CTC log-probabilities (:meth:`log_probs`); ``decoder`` as in :meth:`transcribe`.

        Raises:
            ValueError: an unknown ``decoder``.
        """
        decoder = decoder or self.cfg.decoder
        if decoder not in DECODERS:
            raise ValueError(f"lip-reader decoder must be one of {DECODERS}, got {decoder!r}")
        return self.grammar.decode(log_probs.numpy()) if decoder == "grid_grammar" else greedy_decode(log_probs[:, None])[0]

    def read_clip(self, aligned: np.ndarray, decoders: Sequence[str] = DECODERS) -> dict[str, str]:
        """One ``(T, S, S, 3)`` uint8 aligned clip read once and decoded by each of ``decoders``:
        ``{decoder: sentence}`` (e.g. both the GRID-grammar and the free greedy reading).

        Raises:
            ValueError: an unknown decoder.
        """
        lp = self.log_probs(mouth_crops(aligned, self.cfg.mouth_width, self.cfg.mouth_height))
        return {d: self.decode(lp, d) for d in decoders}

    def read_lips(self, aligned_clips: Sequence[np.ndarray], decoder: str | None = None) -> list[str]:
        """Sentences read from ``(T, S, S, 3)`` uint8 aligned face crops (real or generated); ``decoder`` as in :meth:`transcribe`."""
        return self.transcribe([mouth_crops(c, self.cfg.mouth_width, self.cfg.mouth_height) for c in aligned_clips], decoder)
