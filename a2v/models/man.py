"""MAN generator — Kumar et al., *Multi Modal Adaptive Normalization for Audio to Video Generation*.

Paper sections: §3.0.1 (generator, MAN, CAM), Eq. 1–2, supp. §1.1 and supp. Figs. 1, 2, 7;
Table 2 (γ/β extractor variants), Table 3 (modality ablations).

Data flow (one video frame ``t``):

1. **Seed** (supp. Fig. 1, "X … goes into the initial layer"): the MFCC window of frame t,
   ``(B, 20, 13)`` (20 sub-frames × 13 coefficients, standardised), is read by a spectral-norm
   Conv1d stack over time and a linear layer into a ``(B, C0, seed, seed)`` map.
2. **MAN ResBlocks** (``n_res_blocks``, 8 in the paper) with nearest ×2 upsampling in between,
   from ``seed_size`` to ``image_size``. Every MAN block is conditioned on the modalities
   {image (the reference frame), motion (optical flow or keypoint heatmaps), mel, pitch,
   energy}, each switchable for the Table-3 ablations (the image is always on).
3. **CAM layer** (U-GAT-IT) as the third-last layer: it reads the output of the second-to-last
   ResBlock; the last ResBlock and the RGB conv follow it.
4. ``LeakyReLU → SN conv3×3 → tanh`` → RGB frame in [-1, 1].

a2v choices:

* **Upsampling schedule.** There are ``L = log2(image_size / seed_size) + 1`` resolutions;
  block ``i`` (0-based) runs at level ``floor(i · L / n_res_blocks)``, so the blocks spread
  over all resolutions, the last one at full size (64² → 2,2,1,2,1 blocks at 4,8,16,32,64;
  256² → 2 blocks at 4² then one per level up to 256²). Needs ``n_res_blocks >= L``.
* **Widths.** Level ``l`` has ``channel_mults[l] · base_channels`` channels; by default
  ``min(max_channels, base_channels · 2^(L-1-l))`` (halving towards full resolution, as in
  SPADE / pix2pixHD).
* **Flow units.** Flow enters the MAN blocks divided by ``flow_scale`` pixels (default
  ``image_size / 64``), so one unit means the same fraction of the face at every crop size.
* **Pitch and energy** enter as 256-way one-hot vectors of their bins (MAN §4.1).
* The generator's own CAM logits are returned for inspection but no loss uses them (MAN's CAM
  loss, Eq. 3/6, is on the discriminator's CAM logits).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from a2v.models.blocks import AUDIO_BRANCHES, VIDEO_BRANCHES, CAMLayer, MANResBlock, ModalitySpec, resize_to, sn_conv2d
from a2v.settings import dataclass_from_dict

MOTIONS = ("flow", "keypoints")


@dataclass
class ManConfig:
    """Configuration of :class:`ManGenerator` (and the motion input the predictors produce).

    Attributes:
        image_size: output frame side S in pixels (256 in the paper; 64 for CPU runs). Power of
            two times ``seed_size``.
        base_channels: channel unit of the generator (width at full resolution by default).
        max_channels: cap on the automatic widths.
        channel_mults: optional per-level multipliers of ``base_channels``, from the seed
            level to full resolution (length ``L``); ``None`` → automatic (see module doc).
        seed_size: side of the seed map the MFCC encoder produces (4).
        n_res_blocks: number of MAN ResBlocks (8 in the paper).
        mfcc_shape: ``(sub-frames, coefficients)`` of the MFCC window, ``(20, 13)``.
        audio_channels: width of the MFCC Conv1d encoder.
        mel_dim: mel bands of the ``mel`` input (256).
        n_bins: pitch / energy quantisation levels (256, one-hot).
        motion: ``"flow"`` (MAN-optical) or ``"keypoints"`` (MAN-keypoint).
        n_keypoints: heatmap channels for ``motion="keypoints"`` (15).
        heatmap_size: heatmap side (96).
        video_branch: γ/β net for image and motion, ``"conv2d"`` | ``"partial_conv2d"`` |
            ``"conv2d_eca"`` (paper best).
        audio_branch: γ/β net for mel/pitch/energy, ``"conv1d"`` | ``"lstm"`` (paper best).
        video_hidden: hidden width of each video γ/β net (SPADE: 128).
        audio_hidden: hidden width of each audio γ/β net.
        use_motion, use_mel, use_pitch, use_energy: modality toggles (Table 3); the image
            modality is always on.
        flow_scale: pixels per flow unit at the MAN input; ``None`` → ``image_size / 64``.
        spectral_affine: spectral norm inside the γ/β nets too.
        cam_shared_fc: one linear layer for both CAM pools (U-GAT-IT uses two).
    """

    image_size: int = 256
    base_channels: int = 64
    max_channels: int = 512
    channel_mults: tuple[int, ...] | None = None
    seed_size: int = 4
    n_res_blocks: int = 8
    mfcc_shape: tuple[int, int] = (20, 13)
    audio_channels: int = 128
    mel_dim: int = 256
    n_bins: int = 256
    motion: str = "flow"
    n_keypoints: int = 15
    heatmap_size: int = 96
    video_branch: str = "conv2d_eca"
    audio_branch: str = "lstm"
    video_hidden: int = 128
    audio_hidden: int = 64
    use_motion: bool = True
    use_mel: bool = True
    use_pitch: bool = True
    use_energy: bool = True
    flow_scale: float | None = None
    spectral_affine: bool = False
    cam_shared_fc: bool = False

    def __post_init__(self):
        if self.channel_mults is not None:
            self.channel_mults = tuple(int(m) for m in self.channel_mults)
        self.mfcc_shape = tuple(int(v) for v in self.mfcc_shape)
        ratio = self.image_size / self.seed_size
        if self.image_size < self.seed_size or ratio != 2 ** round(math.log2(ratio)):
            raise ValueError(f"image_size ({self.image_size}) must be seed_size ({self.seed_size}) times a power of two")
        if self.motion not in MOTIONS:
            raise ValueError(f"motion must be one of {MOTIONS}, got {self.motion!r}")
        if self.video_branch not in VIDEO_BRANCHES:
            raise ValueError(f"video_branch must be one of {VIDEO_BRANCHES}, got {self.video_branch!r}")
        if self.audio_branch not in AUDIO_BRANCHES:
            raise ValueError(f"audio_branch must be one of {AUDIO_BRANCHES}, got {self.audio_branch!r}")
        if self.n_res_blocks < self.n_levels:
            raise ValueError(f"n_res_blocks ({self.n_res_blocks}) must be >= the number of resolutions ({self.n_levels})")
        if self.channel_mults is not None and len(self.channel_mults) != self.n_levels:
            raise ValueError(f"channel_mults needs {self.n_levels} entries (one per resolution), got {len(self.channel_mults)}")
        if self.flow_scale is not None and self.flow_scale <= 0:
            raise ValueError(f"flow_scale must be positive, got {self.flow_scale}")

    # ----------------------------------------------------------------- derived quantities
    @property
    def n_levels(self) -> int:
        """Number of resolutions L from ``seed_size`` to ``image_size``."""
        return int(round(math.log2(self.image_size / self.seed_size))) + 1

    def level_channels(self) -> list[int]:
        """Width of each resolution level, seed first."""
        if self.channel_mults is not None:
            return [m * self.base_channels for m in self.channel_mults]
        n = self.n_levels
        return [min(self.max_channels, self.base_channels * 2 ** (n - 1 - lvl)) for lvl in range(n)]

    def block_levels(self) -> list[int]:
        """Resolution level of each MAN ResBlock."""
        return [i * self.n_levels // self.n_res_blocks for i in range(self.n_res_blocks)]

    @property
    def motion_channels(self) -> int:
        """Channels of the motion input: 2 for flow, ``n_keypoints`` for heatmaps."""
        return 2 if self.motion == "flow" else self.n_keypoints

    @property
    def effective_flow_scale(self) -> float:
        """Pixels per flow unit (``flow_scale`` or ``image_size / 64``)."""
        return float(self.flow_scale) if self.flow_scale is not None else self.image_size / 64.0

    def modalities(self) -> list[ModalitySpec]:
        """The MAN modalities in ρ order (image, motion, mel, pitch, energy — those switched on)."""
        mods = [ModalitySpec("image", "video", 3)]
        if self.use_motion:
            mods.append(ModalitySpec(self.motion, "video", self.motion_channels, sparse=True))
        if self.use_mel:
            mods.append(ModalitySpec("mel", "audio", self.mel_dim))
        if self.use_pitch:
            mods.append(ModalitySpec("pitch", "audio", self.n_bins))
        if self.use_energy:
            mods.append(ModalitySpec("energy", "audio", self.n_bins))
        return mods

    # ----------------------------------------------------------------- (de)serialisation
    def to_dict(self) -> dict:
        """Plain-container dict (lists for tuples) suitable for YAML/JSON and ``torch.save``."""
        d = asdict(self)
        d["mfcc_shape"] = list(self.mfcc_shape)
        d["channel_mults"] = list(self.channel_mults) if self.channel_mults is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict | None) -> "ManConfig":
        """Build from a dict; unknown keys raise ``ValueError`` naming them and the known ones."""
        return dataclass_from_dict(cls, d, "model")


class MfccSeed(nn.Module):
    """MFCC window → seed map (supp. Fig. 1, the "X" input).

    ``(B, T_sub, n_coef)`` → Conv1d stack over the sub-frames (coefficients as channels,
    stride 2 twice, LeakyReLU 0.2, spectral norm) → flatten → SN linear → ``(B, C0, s, s)``.
    """

    def __init__(self, mfcc_shape: tuple[int, int], hidden: int, out_channels: int, seed_size: int):
        super().__init__()
        n_sub, n_coef = mfcc_shape
        self.mfcc_shape = tuple(mfcc_shape)
        self.convs = nn.Sequential(
            spectral_norm(nn.Conv1d(n_coef, hidden, 3, padding=1)),
            nn.LeakyReLU(0.2, inplace=True),
            spectral_norm(nn.Conv1d(hidden, hidden, 3, stride=2, padding=1)),
            nn.LeakyReLU(0.2, inplace=True),
            spectral_norm(nn.Conv1d(hidden, hidden, 3, stride=2, padding=1)),
            nn.LeakyReLU(0.2, inplace=True),
        )
        n_out = -(-(-(-n_sub // 2)) // 2)
        self.fc = spectral_norm(nn.Linear(hidden * n_out, out_channels * seed_size * seed_size))
        self.out_shape = (out_channels, seed_size, seed_size)

    def forward(self, mfcc: torch.Tensor) -> torch.Tensor:
        h = self.convs(mfcc.transpose(1, 2))
        return self.fc(h.flatten(1)).view(mfcc.shape[0], *self.out_shape)


class ManGenerator(nn.Module):
    """The MAN frame generator (MAN §3.0.1, supp. §1.1). See the module docstring.

    Args:
        cfg: :class:`ManConfig`.
    """

    def __init__(self, cfg: ManConfig):
        super().__init__()
        self.cfg = cfg
        widths = cfg.level_channels()
        levels = cfg.block_levels()
        self.modalities = cfg.modalities()
        self.modality_names = [m.name for m in self.modalities]
        man_kwargs = dict(
            video_hidden=cfg.video_hidden,
            audio_hidden=cfg.audio_hidden,
            video_branch=cfg.video_branch,
            audio_branch=cfg.audio_branch,
            spectral_affine=cfg.spectral_affine,
        )
        self.seed = MfccSeed(cfg.mfcc_shape, cfg.audio_channels, widths[0], cfg.seed_size)
        blocks = []
        in_ch = widths[0]
        for lvl in levels:
            blocks.append(MANResBlock(in_ch, widths[lvl], self.modalities, **man_kwargs))
            in_ch = widths[lvl]
        self.blocks = nn.ModuleList(blocks)
        self.block_levels = levels
        self.cam_index = cfg.n_res_blocks - 2  # CAM reads this block's output
        self.cam = CAMLayer(widths[levels[self.cam_index]], shared_fc=cfg.cam_shared_fc)
        self.to_rgb = sn_conv2d(widths[-1], 3, 3)

    def rho(self) -> torch.Tensor:
        """ρ of the first MAN block (``blocks[0].norm_0``), ``(M,)`` in :attr:`modality_names` order."""
        return self.blocks[0].norm_0.rho()

    def forward(
        self,
        reference: torch.Tensor,
        motion: torch.Tensor | None,
        mfcc: torch.Tensor,
        mel: torch.Tensor | None,
        f0_bin: torch.Tensor | None,
        energy_bin: torch.Tensor | None,
        memo: dict | None = None,
    ) -> dict[str, torch.Tensor]:
        """Generate frame t.

        Args:
            reference: ``(B, 3, S, S)`` float RGB in [-1, 1], the identity image.
            motion: ``motion="flow"``: ``(B, 2, S, S)`` float optical flow from frame t−1 to t in
                pixels of the S×S crop (x then y); ``motion="keypoints"``: ``(B, 15, 96, 96)``
                heatmaps in [0, 1]. May be ``None`` when ``use_motion`` is off.
            mfcc: ``(B, 20, 13)`` float, standardised MFCC window centred on frame t.
            mel: ``(B, 256)`` float, standardised log-mel vector of frame t (``None`` if off).
            f0_bin: ``(B,)`` int64 pitch bin in ``[0, n_bins)`` (0 = unvoiced) (``None`` if off).
            energy_bin: ``(B,)`` int64 energy bin in ``[0, n_bins)`` (``None`` if off).
            memo: inference only: a dict kept across the calls of one clip, whose ``reference``
                is the same image in every call and batch item; the reference's γ/β of every MAN
                block are computed in the first call and reused (:meth:`MANBlock.forward`).

        Returns:
            ``frame``: ``(B, 3, S, S)`` float in [-1, 1]; ``cam_logits``: ``(B, 2)`` float.

        Raises:
            ValueError: a missing or mis-shaped input.
        """
        cfg = self.cfg
        b = reference.shape[0]
        s = cfg.image_size
        _check(reference, "reference", (b, 3, s, s))
        _check(mfcc, "mfcc", (b, *cfg.mfcc_shape))
        cond: dict[str, torch.Tensor] = {}
        video: dict[str, torch.Tensor] = {"image": reference}
        if cfg.use_motion:
            if cfg.motion == "flow":
                _check(motion, "motion", (b, 2, s, s))
                video["flow"] = motion / cfg.effective_flow_scale
            else:
                _check(motion, "motion", (b, cfg.n_keypoints, cfg.heatmap_size, cfg.heatmap_size))
                video["keypoints"] = motion
        if cfg.use_mel:
            _check(mel, "mel", (b, cfg.mel_dim))
            cond["mel"] = mel
        if cfg.use_pitch:
            _check(f0_bin, "f0_bin", (b,))
            cond["pitch"] = F.one_hot(f0_bin.long().clamp(0, cfg.n_bins - 1), cfg.n_bins).to(mfcc.dtype)
        if cfg.use_energy:
            _check(energy_bin, "energy_bin", (b,))
            cond["energy"] = F.one_hot(energy_bin.long().clamp(0, cfg.n_bins - 1), cfg.n_bins).to(mfcc.dtype)

        pyramid: dict[int, dict[str, torch.Tensor]] = {}

        def cond_at(side: int) -> dict[str, torch.Tensor]:
            if side not in pyramid:
                pyramid[side] = {**cond, **{k: resize_to(v, (side, side)) for k, v in video.items()}}
            return pyramid[side]

        x = self.seed(mfcc)
        cam_logits = None
        for i, block in enumerate(self.blocks):
            if i > 0 and self.block_levels[i] > self.block_levels[i - 1]:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = block(x, cond_at(x.shape[-1]), memo.setdefault(i, {}) if memo is not None else None)
            if i == self.cam_index:
                x, cam_logits = self.cam(x)
        frame = torch.tanh(self.to_rgb(F.leaky_relu(x, 0.2)))
        return {"frame": frame, "cam_logits": cam_logits}


def _check(t: torch.Tensor | None, name: str, shape: tuple[int, ...]) -> None:
    if t is None:
        raise ValueError(f"{name} is required by this configuration (expected shape {shape})")
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(t.shape)}")


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (spectral-norm originals counted once; frozen ones included)."""
    return sum(p.numel() for p in module.parameters())
