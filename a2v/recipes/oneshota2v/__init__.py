"""The OneShotA2V recipe — *Robust One Shot Audio to Video Generation* (Kumar et al., CVPRW 2020).

Networks (``build()``): ``content`` (speech-content encoder, :mod:`a2v.models.content_encoder`),
``generator`` (SPADE generator conditioned on the reference face, :mod:`a2v.models.spade`),
``frame_d`` (multi-scale PatchGAN on (frame, reference), :mod:`a2v.models.discriminators`,
§3.2.1), ``temporal_d`` (multi-scale PatchGAN on windows of L frames,
:mod:`a2v.models.temporal_discriminator`, §3.2.2). Optimisers: ``g`` (content + generator) and
``d`` (both discriminators), Adam lr 0.002, β (0, 0.9) (§6.1).

Pretrained by their own rules before phase 1 (:attr:`pretrained_networks`; the ``pretrain`` rule,
only when a phase weights their loss): ``sync_discriminator`` — SyncNet on the lower half of the
face, contrastive loss, the experiment's training clips (:mod:`a2v.training.sync_discriminator`;
§3.2.3, §4.1.5), **not** the LSE judge; ``eye_landmarks`` — a small eye-landmark regressor whose
EAR is differentiable in the generated frame, trained on shard crops against the dlib landmarks
(:mod:`a2v.training.eye_landmarks`; the blink loss of §4.1.6).

Training samples: windows of L consecutive frames of a clip (L = ``model.temporal_discriminator.
window``) with a reference frame of the same clip, the content encoder's audio feature and the raw
MFCC per frame (:class:`a2v.features.windows.ClipWindows`). Step: :mod:`.step` (loss names there).

Curriculum (§4; ``config/config.yaml``): phase 1 frame D + ``adv``, ``fm``, ``perceptual``;
phase 2 adds the temporal D and the sync D: ``l1_lower``, ``sync`` (CL), ``temporal_adv`` (TAL);
phase 3 adds ``blink`` (BL). "When these losses stabilise" is each phase's configured length.

One-shot fine-tuning (§5): :meth:`OneShotA2VRecipe.finetune` adapts the generator to one unseen
face with the perceptual loss before generating (``a2v generate --finetune-steps N``).

Config keys (every one checked here; unknown keys raise ``ValueError``)::

    model:                          # SpadeGeneratorConfig (image_size, seed_size, base_channels…)
      content: {kind: precomputed | mfcc | whisper, hidden: 128, out_dim: 256, content_shape: [10, 384],
                encoder: whisper_tiny_en, finetune: true, context_s: 1.0}   # the last three: kind whisper
      frame_discriminator: {...}    # DiscriminatorConfig (cam: false by default here)
      temporal_discriminator: {window: 5, stride, n_scales: 3, ...}
    training:                       # FrameTraining keys + gan_loss, perceptual, finetune_lr, finetune_steps (5)
    phases:
      - losses: {adv, fm, perceptual, l1_lower, temporal_adv, sync, blink}
        discriminators: [frame, temporal, sync]
        lr_decay: 0.0               # share of the phase's last steps over which lr decays to 0
    pretrained:
      sync_discriminator: {model: {...}, training: {...}}   # the syncnet section's keys
      eye_landmarks: {model: {...}, training: {...}}
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from a2v.losses.perceptual import build_perceptual
from a2v.models.content_encoder import ContentEncoderConfig, build_content_encoder
from a2v.models.discriminators import DiscriminatorConfig, MultiScalePatchGAN
from a2v.models.spade import SpadeGenerator, SpadeGeneratorConfig
from a2v.models.temporal_discriminator import TemporalDiscriminator, TemporalDiscriminatorConfig
from a2v.recipes.base import Recipe, check_reference, to_image_tensor
from a2v.recipes.gan import GanTraining
from a2v.losses.sync_expert import SYNC_EXPERT, SYNC_EXPERT_TRAINER, SYNC_FRAMES, load_sync_expert
from a2v.recipes.oneshota2v.step import LOSS_KEYS, OneShotStep
from a2v.training.phases import Phase

SYNC_D, EYES = SYNC_EXPERT, "eye_landmarks"


@dataclass
class OneShotModel:
    """The ``model`` section: generator keys with ``content``, ``frame_discriminator`` and
    ``temporal_discriminator`` inside."""

    generator: SpadeGeneratorConfig
    content: ContentEncoderConfig
    frame_discriminator: DiscriminatorConfig
    temporal_discriminator: TemporalDiscriminatorConfig

    @property
    def image_size(self) -> int:
        return self.generator.image_size

    def to_dict(self) -> dict:
        return {**self.generator.to_dict(), "content": self.content.to_dict(),
                "frame_discriminator": vars(self.frame_discriminator), "temporal_discriminator": self.temporal_discriminator.to_dict()}


@dataclass
class OneShotTraining(GanTraining):
    """OneShotA2V's ``training`` keys beyond the runner's: ``gan_loss`` (``original``: the log loss
    of §4.1.1), ``perceptual`` (§4.1.4: VGG19), and

    Attributes:
        finetune_lr: Adam lr of the one-shot fine-tuning (§5; a2v: 1e-4, the paper gives none).
        finetune_steps: fine-tuning steps ``a2v generate`` runs by default (§5: "5 epochs" on the
            one image, i.e. 5 steps); its ``--finetune-steps`` overrides.

    Raises:
        ValueError: as :class:`GanTraining`, ``finetune_lr <= 0`` or ``finetune_steps < 0``.
    """

    finetune_lr: float = 1e-4
    finetune_steps: int = 5

    def __post_init__(self):
        super().__post_init__()
        if not self.finetune_lr > 0:
            raise ValueError(f"training.finetune_lr must be > 0, got {self.finetune_lr}")
        if int(self.finetune_steps) < 0:
            raise ValueError(f"training.finetune_steps must be >= 0, got {self.finetune_steps}")


class OneShotA2VRecipe(Recipe):
    """OneShotA2V and its Table 4 ablations (see the module docstring)."""

    Training = OneShotTraining
    loss_keys = LOSS_KEYS
    discriminators = ("frame", "temporal", "sync")
    phase_options = {"lr_decay": 0.0}
    pretrained_networks = {
        **SYNC_EXPERT_TRAINER,
        EYES: "a2v.training.eye_landmarks:train_eye_landmarks",
    }
    values_title = "Learning rate over training"

    def parse_model(self, model: dict | None) -> OneShotModel:
        model = dict(model or {})
        content = ContentEncoderConfig.from_dict(model.pop("content", None))
        frame = DiscriminatorConfig.from_dict({"cam": False, **(model.pop("frame_discriminator", None) or {})})
        temporal = TemporalDiscriminatorConfig.from_dict(model.pop("temporal_discriminator", None))
        return OneShotModel(SpadeGeneratorConfig.from_dict(model), content, frame, temporal)

    # ------------------------------------------------------------------ configuration
    @property
    def window(self) -> int:
        """L, frames per training sample (the temporal D's window)."""
        return self.model.temporal_discriminator.window

    @property
    def generation_features(self) -> tuple[str, ...]:
        return (self.model.content.feature,)

    def default_losses(self, discriminators: tuple[str, ...]) -> dict[str, float]:
        """a2v weights (the paper gives only the terms): ``adv`` 1, ``fm`` 10 and ``perceptual`` 10
        (pix2pixHD's λ) with the frame D; ``temporal_adv`` 1 with the temporal D; ``sync`` 1 with
        the sync D; ``l1_lower`` and ``blink`` 0 unless set."""
        f = "frame" in discriminators
        return {"adv": 1.0 * f, "fm": 10.0 * f, "perceptual": 10.0 * f,
                "temporal_adv": 1.0 * ("temporal" in discriminators), "sync": 1.0 * ("sync" in discriminators)}

    def check_phase(self, phase: Phase, index: int) -> None:
        """Raises ``ValueError``: a term weighted without its discriminator, the sync loss on windows
        shorter than 5 frames, an ``lr_decay`` outside [0, 1]."""
        w, on = phase.losses, phase.discriminators
        needs = {"adv": "frame", "fm": "frame", "temporal_adv": "temporal", "sync": "sync"}
        bad = [f"{k} needs {d}" for k, d in needs.items() if w.get(k, 0) > 0 and d not in on]
        if bad:
            raise ValueError(f"phase {index}: {'; '.join(bad)} (phase discriminators: {list(on)})")
        if w.get("sync", 0) > 0 and self.window < SYNC_FRAMES:
            raise ValueError(f"phase {index}: the sync loss needs model.temporal_discriminator.window >= {SYNC_FRAMES}")
        decay = phase.options["lr_decay"]
        if not 0 <= float(decay) <= 1:
            raise ValueError(f"phase {index}: lr_decay must be in [0, 1], got {decay}")

    def needed_pretrained(self) -> tuple[str, ...]:
        """``sync_discriminator`` if a phase weights ``sync``; ``eye_landmarks`` if one weights ``blink``."""
        used = {k for p in self.phases for k, v in p.losses.items() if v > 0}
        return tuple(n for n, k in ((SYNC_D, "sync"), (EYES, "blink")) if k in used)

    # ------------------------------------------------------------------ networks
    def build(self) -> dict[str, nn.Module]:
        m = self.model
        fd = m.frame_discriminator
        return {
            "content": build_content_encoder(m.content),
            "generator": SpadeGenerator(m.generator, m.content.out_dim),
            "frame_d": MultiScalePatchGAN(fd.n_scales, 6, fd.base_channels, fd.n_layers, fd.max_channels, fd.cam),
            "temporal_d": TemporalDiscriminator(m.temporal_discriminator),
        }

    def optimizers(self, networks: Mapping[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        t = self.training
        g = [p for k in ("content", "generator") for p in networks[k].parameters() if p.requires_grad]
        d = [p for k in ("frame_d", "temporal_d") for p in networks[k].parameters()]
        return {"g": torch.optim.Adam(g, lr=t.lr, betas=t.betas), "d": torch.optim.Adam(d, lr=t.lr, betas=t.betas)}

    # ------------------------------------------------------------------ data
    def n_samples(self, clips: Sequence[tuple[str, str]]) -> int:
        """Frames / L: an epoch shows every frame about once (windows start at every frame)."""
        from a2v.training.data import count_frames

        return max(1, count_frames(clips) // self.window)

    def fit_state(self, clips: Sequence[tuple[str, str]]) -> dict:
        """The MFCC/mel normaliser and the shards' ``fps`` (frames/s: generation from ``content_mel``
        maps its 100 Hz rows to frames with it).

        Raises:
            ValueError: training shards of different frame rates.
        """
        from a2v.features.shard import ShardReader

        rates = set()
        for path in dict.fromkeys(p for p, _ in clips):
            with ShardReader(path) as shard:
                rates.add(float(shard.attrs["fps"]))
        if len(rates) > 1:
            raise ValueError(f"training shards of different frame rates {sorted(rates)}")
        return {**super().fit_state(clips), "fps": rates.pop()}

    def dataset(self, clips: Sequence[tuple[str, str]], state: dict):
        from a2v.features.windows import ClipWindows

        self._normalizer = self.normalizer(state)  # the step standardises MFCC with it (dataset() precedes trainer())
        features = tuple(dict.fromkeys((self.model.content.feature, "mfcc")))
        shards = list(dict.fromkeys(p for p, _ in clips))
        if self.model.content.kind == "whisper":
            from a2v.features.shard import ShardReader

            for path, clip_id in clips:
                with ShardReader(path) as shard:
                    if not shard.has(clip_id, "content_mel"):
                        raise ValueError(f"{path}: clip {clip_id} has no 'content_mel' (model.content.kind whisper reads it): "
                                         "set preprocess.content_mel: true and rerun the features stage")
                break
        return ClipWindows(shards, self.window, 1, features, clip_ids=[(p, c) for p, c in clips],
                           reference=self.training.reference, seed=self.training.seed, image_size=self.image_size,
                           content_context_s=self.model.content.context_s)

    # ------------------------------------------------------------------ training
    def trainer(self, networks, optimizers, phase: Phase, device: torch.device, emit) -> OneShotStep:
        w = phase.active()
        perceptual = sync_d = eye_net = None
        info = {}
        if "perceptual" in w:
            perceptual = build_perceptual(self.training.perceptual).to(device)
            info["perceptual_backbone"] = perceptual.info.describe()
            emit(f"[{phase.name}] perceptual loss backbone {perceptual.info.describe()}")
        if "sync" in w:
            sync_d, facts = load_sync_expert(self.pretrained_paths[SYNC_D], device, emit, f"[{phase.name}] ")
            info.update(facts)
        if "blink" in w:
            from a2v.training.eye_landmarks import load_eye_landmarks

            eye_net, _ = load_eye_landmarks(self.pretrained_paths[EYES], device)
            eye_net.eval().requires_grad_(False)
            info["eye_landmarks"] = self.pretrained_paths[EYES]
        step = OneShotStep(networks, optimizers, phase, self.training.gan_loss, self.model.content.feature,
                           getattr(self, "_normalizer", None), device, perceptual, sync_d, eye_net, self.training.precision)
        step.info = info
        return step

    def log_values(self, networks: Mapping[str, nn.Module]) -> dict[str, float]:
        return {}

    # ------------------------------------------------------------------ inference
    def generate_frames(self, networks: Mapping[str, nn.Module], reference: torch.Tensor, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        x = features[self.model.content.feature].float()
        return networks["generator"](reference, networks["content"](x))

    def generate_stream(self, networks: Mapping[str, nn.Module], state: dict, reference: np.ndarray,
                        feature_chunks: Iterable[Mapping[str, np.ndarray]], device: torch.device | str = "cpu",
                        batch: int = 16) -> Iterator[np.ndarray]:
        """Blocks of frames for a reference and chunks of the audio features
        (:meth:`Recipe.generate_stream`). With ``content.kind: whisper`` the feature is the clip's
        ``content_mel`` ``(R, 80)`` at 100 rows per second, in consecutive chunks of rows; T =
        ``floor(R * fps / 100)`` frames (``fps`` from the checkpoint's state) are made in blocks of
        ``max(L, batch // L * L)`` frames, each L-frame segment encoded as in training
        (:func:`a2v.audio.content.mel_segment`).

        a2v: the whisper kind gathers all its ``content_mel`` chunks before the first block (the
        rows outside the clip take the clip's minimum, a whole-clip value): 16 kB per second of
        audio, against the frames, which still stream.

        Raises (when iterated):
            ValueError: as :meth:`Recipe.generate_stream`; a checkpoint without ``fps`` in its state,
                a ``content_mel`` that is not ``(R, 80)``.
        """
        if self.model.content.kind != "whisper":
            yield from super().generate_stream(networks, state, reference, feature_chunks, device, batch)
            return
        from a2v.audio.content import MEL_RATE_HZ, mel_segment
        from a2v.recipes.base import to_uint8_frames

        if "fps" not in state:
            raise ValueError("this checkpoint's state has no fps: retrain it with this a2v version")
        if int(batch) < 1:
            raise ValueError(f"batch must be >= 1 frame, got {batch}")
        ref = to_image_tensor(check_reference(reference, self.image_size)).to(device)
        pieces = []
        for chunk in feature_chunks:
            if "content_mel" not in chunk:
                raise ValueError("generation needs the feature 'content_mel'")
            pieces.append(np.asarray(chunk["content_mel"], np.float32))
            if pieces[-1].ndim != 2:
                raise ValueError(f"content_mel must be (R, 80), got {pieces[-1].shape}")
        if not pieces:
            raise ValueError("features hold no frame")
        mel, fps = np.concatenate(pieces), float(state["fps"])
        del pieces
        n = int(np.floor(len(mel) * fps / MEL_RATE_HZ + 1e-9))
        L, step = self.window, max(self.window, batch // self.window * self.window)
        for t0 in range(0, n, step):
            starts = range(t0, min(n, t0 + step), L)
            pairs = [mel_segment(mel, s, L, fps, self.model.content.context_s) for s in starts]
            seg = torch.from_numpy(np.stack([p[0] for p in pairs])).to(device)
            idx = torch.from_numpy(np.stack([p[1] for p in pairs])).to(device)
            with torch.inference_mode():
                code = networks["content"](seg, idx)[: min(n, t0 + step) - t0]
                frames = networks["generator"](ref.expand(len(code), -1, -1, -1), code)
            yield to_uint8_frames(frames)

    def silent_features(self, preprocess: Mapping) -> np.ndarray:
        """The content encoder's input for one second of silence, its middle frame: ``(1, …)``
        float32, raw as in a shard (``preprocess``: the checkpoint's section)."""
        from a2v.audio.features import AudioFeatureConfig, mfcc_windows

        cfg = AudioFeatureConfig(sample_rate=int(preprocess["sample_rate"]), fps=float(preprocess["fps"]))
        silence = np.zeros(cfg.sample_rate, np.float32)
        n = int(round(cfg.fps))
        if self.model.content.feature == "mfcc":
            return mfcc_windows(silence, n, cfg)[n // 2:n // 2 + 1]
        from a2v.audio.content import content_features, load_content_encoder

        encoder = load_content_encoder(preprocess["content_encoder"])
        return content_features(silence, cfg.sample_rate, cfg.fps, encoder, n_frames=n,
                                pad_to_30s=bool(preprocess.get("content_pad_to_30s", True)))[n // 2:n // 2 + 1]

    def _silent_code(self, content: nn.Module, state: dict, preprocess: Mapping, device: torch.device) -> torch.Tensor:
        """The content code ``(1, D)`` of silence, the one-shot fine-tuning's audio."""
        if self.model.content.kind == "whisper":
            from a2v.audio.content import clip_log_mel, mel_segment

            fps = float(preprocess["fps"])
            mel = clip_log_mel(np.zeros(int(preprocess["sample_rate"]), np.float32), int(preprocess["sample_rate"]), fps)
            seg, idx = mel_segment(mel, int(round(fps)) // 2, 1, fps, self.model.content.context_s)
            return content(torch.from_numpy(seg[None]).to(device), torch.from_numpy(idx[None]).to(device))
        x = self.silent_features(preprocess)
        norm = self.normalizer(state)
        x = torch.from_numpy(np.asarray(norm.apply(self.model.content.feature, x) if norm else x, np.float32)).to(device)
        return content(x)

    def finetune(self, networks: Mapping[str, nn.Module], state: dict, reference: np.ndarray, steps: int,
                 device: torch.device | str = "cpu", log=None, preprocess: Mapping | None = None) -> dict[str, float]:
        """One-shot adaptation (§5): ``steps`` Adam steps (``training.finetune_lr``) on the
        generator so that it reproduces ``reference`` from silent audio, under the perceptual loss.

        a2v: the target is the reference itself, driven by 200 ms of silence (the paper says only
        "perceptual loss during inference time … 5 epochs"); the content encoder stays fixed and the
        generator's batch-norm statistics are not updated (eval mode).

        ``preprocess``: the checkpoint's ``preprocess`` section (sample rate, fps, content encoder).

        Returns:
            ``{"perceptual_before", "perceptual_after", "steps"}``.

        Raises:
            ValueError: ``steps < 1``, a bad reference, or no ``preprocess``.
        """
        if not preprocess:
            raise ValueError("finetune needs the checkpoint's preprocess section (sample rate, fps, content encoder)")
        if steps < 1:
            raise ValueError(f"finetune steps must be >= 1, got {steps}")
        device = torch.device(device)
        ref = to_image_tensor(check_reference(reference, self.image_size)).to(device)
        G, C = networks["generator"], networks["content"]
        G.eval()
        C.eval()
        with torch.no_grad():
            code = self._silent_code(C, state, preprocess, device)
        perceptual = build_perceptual(self.training.perceptual).to(device)
        G.requires_grad_(True)  # a previous fine-tuning (another face) left it frozen
        opt = torch.optim.Adam(G.parameters(), lr=self.training.finetune_lr, betas=self.training.betas)
        before = after = float("nan")
        from tqdm import tqdm

        for i in tqdm(range(steps), desc="one-shot fine-tuning", unit="step", disable=log is None, file=sys.stderr):
            loss = perceptual(G(ref, code), ref)
            if i == 0:
                before = float(loss.detach())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            after = float(perceptual(G(ref, code), ref))
        if log:
            log(f"one-shot fine-tuning: {steps} steps, perceptual loss {before:.4f} -> {after:.4f}")
        G.requires_grad_(False)
        return {"perceptual_before": before, "perceptual_after": after, "steps": steps}

    # ------------------------------------------------------------------ report
    def facts(self, checkpoints: Sequence[dict]) -> list[tuple[str, str]]:
        model = checkpoints[-1]["identity"]["model"] if checkpoints else self.model.to_dict()
        content = model.get("content", {})
        pre = (checkpoints[-1].get("config") or {}).get("preprocess", {}) if checkpoints else {}
        if content.get("kind") == "mfcc":
            desc = "conv encoder on 13 MFCC x 20 sub-frames, trained with the generator"
        elif content.get("kind") == "whisper":
            desc = (f"{content.get('encoder')} encoder {'fine-tuned with' if content.get('finetune') else 'frozen in'} the generator, "
                    f"on the log-mel of the frames' span + {content.get('context_s')} s each side, + trainable head")
        else:
            desc = (f"{pre.get('content_encoder') or '?'} encoder frames (frozen, precomputed in the shards"
                    f"{', clip padded to 30 s' if pre.get('content_pad_to_30s', True) else ''}) + trainable head")
        lines = [("model", f"image_size={model.get('image_size')}, SPADE generator, temporal window L={model.get('temporal_discriminator', {}).get('window')}"),
                 ("content encoder", desc + " (the paper: DeepSpeech2, not available offline)")]
        backbones = sorted({b for c in checkpoints if (b := (c.get("info") or {}).get("perceptual_backbone"))})
        lines.append(("perceptual loss", "; ".join(backbones) or "not used"))
        sync = sorted({s for c in checkpoints if (s := (c.get("info") or {}).get("sync_discriminator"))})
        lines.append(("sync discriminator", "; ".join(sync) + " (trained by its own rule; not the LSE judge)" if sync else "not used"))
        return lines
