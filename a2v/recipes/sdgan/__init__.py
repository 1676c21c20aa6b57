"""The ``sdgan`` recipe — the speech-driven GAN of Jain et al., *Speech Driven Video Generation from
Facial Images* (full text: ``../shared/docs/papers/sdgan_speech_driven_video_from_facial_images.md``).

Networks (``build()``, :mod:`a2v.models.sdgan`): ``generator`` (audio encoder + 2-layer GRU,
identity encoder with U-Net skips, noise GRU, frame decoder; §III.1–4), ``frame_d`` (frame +
still → logit, §III.5), ``sequence_d`` (recurrent, audio-conditioned, 1-D pyramid pooling so any
length gives one logit, §III.6; :mod:`a2v.models.spp`). Optimisers: ``g`` Adam lr 2e-3 (``training.lr``)
and ``d`` Adam lr 2e-5 (``training.d_lr``) over both discriminators (§IV).

Training samples: windows of ``training.sequence_length`` consecutive frames of a clip with a
reference still of the same clip and the audio feature of every frame, standardised per
coefficient with statistics fitted on the training clips (:meth:`SdganRecipe.fit_state`; a2v: the
paper does not say how its MFCC are scaled). Step:
:mod:`.step` (the loss terms: :data:`~a2v.recipes.sdgan.step.LOSS_TERMS`).

Generation (:meth:`SdganRecipe.generate`): the reference is encoded once; the audio and noise GRUs
run over the whole clip in chunks of ``batch`` frames, carrying their hidden state from chunk to
chunk, so any length is generated with memory that does not grow with it, and the frames do not
depend on the chunk size. a2v: the noise is drawn for the whole clip from a CPU generator seeded
by ``seed`` (0), so a video is reproducible (the paper says nothing of the noise at test time).

Config keys (every one checked; unknown keys raise ``ValueError``)::

    model:                  # a2v.models.sdgan.SdganConfig
      image_size: 256       # S, the shards' crop size (generated frames are S × S)
      net_size: 128         # s, the networks' side (a2v: the paper's 128 × 96 as 128 × 128); null = S
      audio_feature: mfcc_cran
      audio_channels, audio_fc, audio_code, audio_rnn, rnn_layers, id_channels, max_channels,
      id_code: 50, skips: 4, noise_dim: 10, noise_std: 0.77
      frame_discriminator: {base_channels, max_channels, n_layers: 4, hidden}
      sequence_discriminator: {frame_channels, max_channels, frame_code, audio_channels, audio_fc,
                               audio_code, rnn_hidden, rnn_layers, levels: [1, 2, 4], pool: max, hidden}
    training:               # FrameTraining keys + gan_loss, d_lr (2e-5), sequence_length, frame_samples
    phases:
      - losses: {frame_adv, seq_adv, l1_lower, sync}   # sync: the lip-sync expert (a2v.losses.sync_expert)
        discriminators: [frame, sequence]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from a2v.features.windows import resize_frames
from a2v.losses.adversarial import GAN_LOSSES
from a2v.models.sdgan import FrameDiscriminator, SdganConfig, SdganGenerator, SequenceDiscriminator
from a2v.recipes.base import FrameTraining, Recipe, check_reference, feature_blocks, to_image_tensor, to_uint8_frames
from a2v.losses.sync_expert import SYNC_EXPERT, SYNC_EXPERT_TRAINER, SYNC_FRAMES, SYNC_TERM, load_sync_expert
from a2v.recipes.sdgan.step import LOSS_KEYS, LOSS_TERMS, TERM_DISCRIMINATOR, SdganStep
from a2v.training.phases import Phase


@dataclass
class SdganTraining(FrameTraining):
    """The ``training`` section: the runner's keys (``lr`` is the generator's) and

    Attributes:
        d_lr: the discriminators' Adam lr (§IV: 2e-5; the generator's ``lr`` 2e-3).
        betas: Adam (β1, β2) of both (a2v: DCGAN's (0.5, 0.999); the paper gives none).
        gan_loss: adversarial form (:data:`a2v.losses.adversarial.GAN_LOSSES`; ``original`` = the
            GAN log loss).
        sequence_length: frames per training window (a2v: 25 = 1 s at 25 fps; the sequence D
            takes any length, the paper gives none).
        frame_samples: frames per window the frame D judges (§IV's ``S(x)``; a2v: 1).

    Raises:
        ValueError: as :class:`FrameTraining`, ``d_lr <= 0``, an unknown ``gan_loss``,
            ``sequence_length < 2``, ``frame_samples`` outside ``[1, sequence_length]``.
    """

    lr: float = 2e-3
    d_lr: float = 2e-5
    betas: tuple[float, float] = (0.5, 0.999)
    gan_loss: str = "original"
    sequence_length: int = 25
    frame_samples: int = 1

    def __post_init__(self):
        super().__post_init__()
        if not self.d_lr > 0:
            raise ValueError(f"training.d_lr must be > 0, got {self.d_lr}")
        if self.gan_loss not in GAN_LOSSES:
            raise ValueError(f"training.gan_loss must be one of {GAN_LOSSES}, got {self.gan_loss!r}")
        if int(self.sequence_length) < 2:
            raise ValueError(f"training.sequence_length must be >= 2 frames, got {self.sequence_length}")
        if not 1 <= int(self.frame_samples) <= int(self.sequence_length):
            raise ValueError(f"training.frame_samples must be in [1, sequence_length={self.sequence_length}], got {self.frame_samples}")


class StandardisedWindows(torch.utils.data.Dataset):
    """:class:`~a2v.features.windows.ClipWindows` items with the audio feature standardised and
    renamed ``audio``: ``(T, time, coefficients)`` float32, ``(x − mean) / std`` per coefficient.

    Args:
        windows: the ClipWindows (holding ``feature``). feature: its name.
        mean, std: ``(coefficients,)`` float32 (:meth:`SdganRecipe.fit_state`).
    """

    def __init__(self, windows, feature: str, mean: torch.Tensor, std: torch.Tensor):
        self.windows, self.feature = windows, feature
        self.mean, self.std = torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(std, dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        item = dict(self.windows[key])
        raw = item[self.feature] if self.feature == "mfcc" else item.pop(self.feature)  # raw mfcc stays for the sync expert
        item["audio"] = (raw.float() - self.mean) / self.std
        return item


NOISE_BLOCK = 64
"""Frames of noise :class:`NoiseTape` draws at a time."""


class NoiseTape:
    """A clip's generation noise (§III.3), frame by frame: blocks of :data:`NOISE_BLOCK` frames drawn
    in turn from one CPU generator seeded with ``seed`` (:meth:`SdganGenerator.draw_noise`), so a
    frame's noise depends on its index and the seed only — not on how the clip is chunked, nor on
    the clip's length (a clip's noise is the start of a longer clip's).

    a2v: the clip's noise used to be one draw of all its frames; torch's CPU ``randn`` transforms
    its numbers 16 at a time and redraws a tail that is not a multiple of 16 (or all of a draw
    under 16), so that draw depends on the clip's length and a stream cannot reproduce it. The
    tape equals it but for those last numbers (measured, seed 0, 37 frames × 10: the last 16 of
    370 differ, i.e. frames 35–36), so the frames of a seed moved there.
    """

    def __init__(self, generator: nn.Module, seed: int = 0):
        self.G, self.rng = generator, torch.Generator().manual_seed(int(seed))
        self.buffer = torch.empty(1, 0, int(generator.cfg.noise_dim))

    def take(self, n: int) -> torch.Tensor:
        """The next ``n`` frames' noise, ``(1, n, noise_dim)`` float32 on the CPU."""
        while self.buffer.shape[1] < n:
            self.buffer = torch.cat([self.buffer, self.G.draw_noise(1, NOISE_BLOCK, "cpu", self.rng)], dim=1)
        out, self.buffer = self.buffer[:, :n], self.buffer[:, n:]
        return out


class SdganRecipe(Recipe):
    """The speech-driven GAN of Jain et al. (see the module docstring)."""

    Training = SdganTraining
    loss_keys = LOSS_KEYS
    discriminators = ("frame", "sequence")
    phase_options: dict = {}
    values_title = "Values logged beside the losses"
    pretrained_networks = dict(SYNC_EXPERT_TRAINER)

    def parse_model(self, model: dict | None) -> SdganConfig:
        return SdganConfig.from_dict(model)

    def model_dict(self) -> dict:
        from a2v.training.checkpoint import plain

        return plain(self.model.to_dict())

    # ------------------------------------------------------------------ configuration
    @property
    def feature(self) -> str:
        """The shard audio feature the model reads."""
        return self.model.audio_feature

    @property
    def generation_features(self) -> tuple[str, ...]:
        return (self.model.audio_feature,)

    def default_losses(self, discriminators: tuple[str, ...]) -> dict[str, float]:
        """``frame_adv`` 1 with the frame D, ``seq_adv`` 1 with the sequence D (§IV: the sum of the
        discriminators' losses); ``l1_lower`` 0 unless set (a2v's addition)."""
        return {"frame_adv": 1.0 * ("frame" in discriminators), "seq_adv": 1.0 * ("sequence" in discriminators)}

    def check_phase(self, phase: Phase, index: int) -> None:
        """Raises ``ValueError``: an adversarial term weighted without its discriminator, or a phase
        that weights no term."""
        bad = [f"{k} needs {d}" for k, d in TERM_DISCRIMINATOR.items() if phase.losses.get(k, 0) > 0 and d not in phase.discriminators]
        if bad:
            raise ValueError(f"phase {index}: {'; '.join(bad)} (phase discriminators: {list(phase.discriminators)})")
        if not phase.active():
            raise ValueError(f"phase {index}: no loss term is weighted; terms: {LOSS_TERMS}")
        if phase.losses.get(SYNC_TERM, 0) > 0 and int(self.training.sequence_length) < SYNC_FRAMES:
            raise ValueError(f"phase {index}: the sync expert needs training.sequence_length >= {SYNC_FRAMES}")

    # ------------------------------------------------------------------ networks
    def build(self) -> dict[str, nn.Module]:
        m = self.model
        return {"generator": SdganGenerator(m), "frame_d": FrameDiscriminator(m.size, m.frame_discriminator),
                "sequence_d": SequenceDiscriminator(m.size, m.audio_shape, m.sequence_discriminator)}

    def optimizers(self, networks: Mapping[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        t = self.training
        d = [p for k in ("frame_d", "sequence_d") for p in networks[k].parameters()]
        return {"g": torch.optim.Adam(networks["generator"].parameters(), lr=t.lr, betas=t.betas),
                "d": torch.optim.Adam(d, lr=t.d_lr, betas=t.betas)}

    # ------------------------------------------------------------------ data
    def fit_state(self, clips: Sequence[tuple[str, str]]) -> dict:
        """Per-coefficient mean and std (floored at 1e-3) of the audio feature over every frame and
        sub-frame of ``clips``: ``{"audio_norm": {"feature", "mean" (C,), "std" (C,)}}`` (float32
        tensors).

        Raises:
            ValueError: no frame in ``clips``.
        """
        from a2v.features.normalizer import feature_mean_std

        mean, std = feature_mean_std(clips, self.feature)
        return {"audio_norm": {"feature": self.feature, "mean": torch.tensor(mean, dtype=torch.float32),
                               "std": torch.tensor(std, dtype=torch.float32)}}

    def _audio_norm(self, state: dict) -> tuple[torch.Tensor, torch.Tensor]:
        norm = state.get("audio_norm")
        if not norm or norm.get("feature") != self.feature:
            raise ValueError(f"the checkpoint's data state has no {self.feature} statistics (audio_norm); was it trained by sdgan?")
        return torch.as_tensor(norm["mean"], dtype=torch.float32), torch.as_tensor(norm["std"], dtype=torch.float32)

    def n_samples(self, clips: Sequence[tuple[str, str]]) -> int:
        """Frames / ``sequence_length``: an epoch shows every frame about once (windows start at every frame)."""
        from a2v.training.data import count_frames

        return max(1, count_frames(clips) // int(self.training.sequence_length))

    def dataset(self, clips: Sequence[tuple[str, str]], state: dict) -> StandardisedWindows:
        from a2v.features.windows import ClipWindows

        shards = list(dict.fromkeys(p for p, _ in clips))
        features = tuple(dict.fromkeys((self.feature, *(("mfcc",) if SYNC_EXPERT in self.needed_pretrained() else ()))))
        windows = ClipWindows(shards, int(self.training.sequence_length), 1, features, clip_ids=[(p, c) for p, c in clips],
                              reference=self.training.reference, seed=self.training.seed, image_size=self.model.size)
        if len(windows) == 0:
            raise ValueError(f"no training clip has {self.training.sequence_length} frames (training.sequence_length)")
        return StandardisedWindows(windows, self.feature, *self._audio_norm(state))

    # ------------------------------------------------------------------ training
    def trainer(self, networks, optimizers, phase: Phase, device: torch.device, emit) -> SdganStep:
        t = self.training
        expert, info = None, {}
        if phase.losses.get(SYNC_TERM, 0) > 0:
            expert, info = load_sync_expert(self.pretrained_paths[SYNC_EXPERT], device, emit, f"[{phase.name}] ")
        step = SdganStep(networks, optimizers, phase, t.gan_loss, t.frame_samples, device, t.precision, expert)
        step.info = info
        return step

    # ------------------------------------------------------------------ inference
    def generate_stream(self, networks: Mapping[str, nn.Module], state: dict, reference: np.ndarray,
                        feature_chunks: Iterable[Mapping[str, np.ndarray]], device: torch.device | str = "cpu",
                        batch: int = 16, seed: int = 0) -> Iterator[np.ndarray]:
        """Frames for a reference face and chunks of a clip's audio features, any length
        (:meth:`Recipe.generate_stream`; :meth:`generate` is the whole clip's).

        Args:
            networks: :meth:`build`'s, weights loaded, eval mode.
            state: the checkpoint's data state (the audio statistics).
            reference: ``(S, S, 3)`` uint8 RGB aligned crop, S = ``model.image_size``.
            feature_chunks: ``{audio_feature: (n, time, coefficients)}`` raw as in a shard (float32),
                consecutive frames.
            device: where to run. batch: frames per block (>= 1); the GRUs carry their state across
                blocks, so the frames do not depend on it (but for float rounding, at most 1 of 255
                measured) and memory does not grow with the clip's length.
            seed: seed of the clip's noise (§III.3, :class:`NoiseTape`): the same seed gives the
                same frames, however the features are chunked and whatever ``batch``.

        Yields:
            ``(n, S, S, 3)`` uint8 RGB frames (resized bilinearly from ``net_size`` when it
            differs), ``n = batch`` but for the last block.

        Raises (when iterated):
            ValueError: wrong reference, missing feature or feature shape, no frame, ``batch < 1``,
                no audio statistics in ``state``.
        """
        S, s = self.image_size, self.model.size
        ref = check_reference(reference, S)
        device = torch.device(device)
        mean, std = self._audio_norm(state)
        G = networks["generator"]
        noise = NoiseTape(G, seed)
        with torch.inference_mode():
            code, skips = G.encode_reference(to_image_tensor(resize_frames(ref, s)).to(device))
        hidden = None
        for block in feature_blocks(feature_chunks, (self.feature,), batch, {self.feature: self.model.audio_shape}):
            audio = (torch.from_numpy(np.asarray(block[self.feature], np.float32)) - mean) / std
            eps = noise.take(len(audio))
            with torch.inference_mode():
                frames, hidden = G.decode_sequence(code, skips, audio.unsqueeze(0).to(device), eps.to(device), hidden)
                frames = frames[0].float()
                if s != S:
                    frames = F.interpolate(frames, size=(S, S), mode="bilinear", align_corners=False).clamp(-1, 1)
            yield to_uint8_frames(frames)

    # ------------------------------------------------------------------ report
    def facts(self, checkpoints: Sequence[dict]) -> list[tuple[str, str]]:
        model = checkpoints[-1]["identity"]["model"] if checkpoints else self.model.to_dict()
        S, s = model.get("image_size"), model.get("net_size") or model.get("image_size")
        return [
            ("model", f"speech-driven GAN (Jain et al.), networks at {s}×{s} (paper: 128×96)"
                      + (f", frames resized to {S}×{S}" if s != S else "")),
            ("audio input", f"{model.get('audio_feature')} windows (paper: MFCC; no raw audio in the shards)"),
            ("generator", f"identity code {model.get('id_code')}, {model.get('skips')} U-Net skips, noise "
                          f"{model.get('noise_dim')}-dim N(0, {model.get('noise_std')}²) through a GRU"),
            ("discriminators", "frame (frame + still) and sequence (GRU + audio, 1-D pyramid pooling levels "
                               f"{model.get('sequence_discriminator', {}).get('levels')})"),
        ]


__all__ = ["NOISE_BLOCK", "NoiseTape", "SdganRecipe", "SdganTraining", "StandardisedWindows"]
