"""A small eye-landmark regressor on aligned face crops, and a differentiable eye aspect ratio —
what OneShotA2V's blink loss needs (OneShotA2V §4.1.6 and §4 curriculum phase 3: L1 between the
EAR of the real and of the generated frame).

The EAR of Soukupova & Cech ("Real-Time Eye Blink Detection using Facial Landmarks", CVWW 2016,
eq. 1; :mod:`a2v.face.ear`) is computed from six landmarks per eye. The shards store dlib's 68
landmarks of every real frame, but dlib is not differentiable, so the blink loss cannot reach
the generator through it. :class:`EyeLandmarkNet` predicts the 12 eye landmarks (iBUG 36-47) of
an aligned crop (:mod:`a2v.face.align`) with a small CNN trained against the shards' dlib
landmarks (:mod:`a2v.training.eye_landmarks`), and :func:`ear_torch` turns them into the EAR,
so ``|EAR(net(generated)) - EAR_real|`` has a gradient with respect to the generated pixels.

**a2v:** the network (the paper names no landmark model for its loss; it cites dlib [3] for
alignment): aligned crops put both eye centres at fixed template points (0.375, 0.400) and
(0.625, 0.400) of the crop side, so the net

1. cuts a fixed **eye band** of the crop (:attr:`EyeLandmarkConfig.band`, fractions of the side;
   by default x 0.20-0.80, y 0.28-0.52: both eyes and the brows) and resizes it to
   ``band_height × band_width`` pixels (bilinear, anti-aliased when shrinking; differentiable);
2. runs a stride-2 conv stack (conv 3×3, BatchNorm, ReLU per stage);
3. flattens (so position is kept) and regresses, with a linear layer initialised to zero, the
   offsets of the 12 points from the **mean training shape** (a buffer, in fractions of the crop
   side, set from the training landmarks), so an untrained net predicts the mean shape.

Coordinates: pixels (x, y) of the input crop of side ``S``, pixel centres at integers (as in
:mod:`a2v.face.align`); a point at fraction ``f`` of the side is at ``f·S − 0.5`` pixels, so one
net serves crops of any side.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from a2v.face.ear import EYE_INDICES
from a2v.settings import dataclass_from_dict

N_POINTS = 12
"""Eye landmarks predicted: iBUG 36-47, in that order (36-41 the image-left eye, 42-47 the image-right eye)."""

FIRST_INDEX = EYE_INDICES[0][0]
"""iBUG index of the first predicted point (36); point ``k`` of the net is iBUG ``36 + k``."""

MIRROR = (9, 8, 7, 6, 11, 10, 3, 2, 1, 0, 5, 4)
"""Horizontal flip of the 12 eye points: point ``k`` of a mirrored face is point ``MIRROR[k]`` of
the original, mirrored (iBUG 36↔45, 37↔44, 38↔43, 39↔42, 40↔47, 41↔46)."""

DEFAULT_MEAN_SHAPE = (
    (0.3270, 0.3948), (0.3578, 0.3788), (0.3945, 0.3815), (0.4286, 0.4049), (0.3933, 0.4110), (0.3551, 0.4105),
    (0.5704, 0.4077), (0.6029, 0.3865), (0.6401, 0.3845), (0.6710, 0.3994), (0.6431, 0.4160), (0.6050, 0.4153),
)
"""Mean of iBUG 36-47 over two s1 clips of ``resources/grid_sample`` aligned by
:mod:`a2v.face.align`, ``(x, y)`` fractions of the crop side — only the starting value of
:attr:`EyeLandmarkNet.mean_shape`, which training replaces by its own clips' mean."""

OFFSET_SCALE = 0.05
"""Fraction of the crop side that one unit of the regression output moves a point."""


@dataclass
class EyeLandmarkConfig:
    """Sizes of :class:`EyeLandmarkNet` (the ``eye_landmarks.model`` config section).

    Attributes:
        band: ``(left, top, right, bottom)`` of the eye band, fractions of the crop side (**a2v:**
            x 0.20-0.80, y 0.28-0.52 hold both eyes and brows of a GRID face aligned by
            :mod:`a2v.face.align`, with about one eye width to spare at each side).
        band_width, band_height: pixels the band is resized to before the conv stack.
        channels: widths of the stride-2 conv stages (at least one).
        hidden: width of the hidden fully connected layer (0: none).

    Raises:
        ValueError: a band outside [0, 1] or empty, sizes < 8 px, no or non-positive channels,
            negative ``hidden``.
    """

    band: tuple[float, float, float, float] = (0.20, 0.28, 0.80, 0.52)
    band_width: int = 96
    band_height: int = 40
    channels: tuple[int, ...] = (16, 32, 64, 96)
    hidden: int = 128

    def __post_init__(self):
        self.band = tuple(float(v) for v in self.band)
        self.channels = tuple(int(c) for c in self.channels)
        left, top, right, bottom = self.band if len(self.band) == 4 else (0, 0, 0, 0)
        if len(self.band) != 4 or not (0.0 <= left < right <= 1.0 and 0.0 <= top < bottom <= 1.0):
            raise ValueError(f"eye_landmarks band must be (left, top, right, bottom) fractions in [0, 1], got {self.band}")
        if min(self.band_width, self.band_height) < 8:
            raise ValueError(f"eye_landmarks band size must be at least 8 px a side, got {self.band_width}×{self.band_height}")
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"eye_landmarks channels must be one or more positive widths, got {self.channels}")
        if self.hidden < 0:
            raise ValueError(f"eye_landmarks hidden must be >= 0, got {self.hidden}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["band"], d["channels"] = list(self.band), list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict | None) -> "EyeLandmarkConfig":
        """Build from a dict; unknown keys raise ``ValueError``."""
        return dataclass_from_dict(cls, d, "eye_landmarks model")


def band_bounds(cfg: EyeLandmarkConfig, size: int) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` integer pixel bounds (right/bottom exclusive) of the eye band
    in a crop of side ``size``: the band's fractions times ``size``, rounded, at least 2 px each way."""
    left, top, right, bottom = (int(round(f * size)) for f in cfg.band)
    return left, top, max(right, left + 2), max(bottom, top + 2)


def cut_band(crops: torch.Tensor, cfg: EyeLandmarkConfig) -> torch.Tensor:
    """The eye band of aligned crops, resized: ``(B, 3, S, S)`` → ``(B, 3, band_height, band_width)``
    (same dtype; bilinear, anti-aliased where it shrinks; differentiable)."""
    left, top, right, bottom = band_bounds(cfg, crops.shape[-1])
    band = crops[:, :, top:bottom, left:right]
    shrink = band.shape[-1] > cfg.band_width or band.shape[-2] > cfg.band_height
    return F.interpolate(band, size=(cfg.band_height, cfg.band_width), mode="bilinear", align_corners=False, antialias=shrink)


class EyeLandmarkNet(nn.Module):
    """Aligned face crops → the 12 eye landmarks (iBUG 36-47) in crop pixels (module docstring)."""

    MIN_SIZE = 16
    """Smallest crop side accepted (pixels)."""

    def __init__(self, cfg: EyeLandmarkConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or EyeLandmarkConfig()
        layers: list[nn.Module] = []
        c, h, w = 3, cfg.band_height, cfg.band_width
        for width in cfg.channels:
            layers += [nn.Conv2d(c, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            c, h, w = width, (h + 1) // 2, (w + 1) // 2
        self.features = nn.Sequential(*layers)
        flat = c * h * w
        head: list[nn.Module] = [nn.Flatten()]
        if cfg.hidden:
            head += [nn.Linear(flat, cfg.hidden), nn.ReLU(inplace=True)]
            flat = cfg.hidden
        last = nn.Linear(flat, 2 * N_POINTS)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.head = nn.Sequential(*head, last)
        self.register_buffer("mean_shape", torch.tensor(DEFAULT_MEAN_SHAPE, dtype=torch.float32))

    def set_mean_shape(self, points: torch.Tensor, size: int) -> None:
        """Set :attr:`mean_shape` (``(12, 2)`` fractions of the side) from ``(N, 12, 2)`` crop-pixel
        landmarks of crops of side ``size``.

        Raises:
            ValueError: wrong shape, no points, or non-finite values.
        """
        points = torch.as_tensor(points, dtype=torch.float32)
        if points.ndim != 3 or tuple(points.shape[1:]) != (N_POINTS, 2) or len(points) == 0:
            raise ValueError(f"mean shape needs (N >= 1, {N_POINTS}, 2) landmarks, got {tuple(points.shape)}")
        if not torch.isfinite(points).all():
            raise ValueError("mean shape landmarks must be finite")
        self.mean_shape.copy_((points.mean(0) + 0.5) / float(size))

    def mean_points(self, size: int) -> torch.Tensor:
        """The mean shape in pixels of a crop of side ``size``: ``(12, 2)`` float32."""
        return self.mean_shape * float(size) - 0.5

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """Predict the eye landmarks.

        Args:
            crops: ``(B, 3, S, S)`` float RGB in [-1, 1], aligned by :mod:`a2v.face.align`
                (any side ``S >= 16``; :func:`a2v.features.windows.frames_to_tensor` of shard frames).

        Returns:
            ``(B, 12, 2)`` float32 (x, y) pixels of the input crop, pixel centres at integers,
            iBUG 36-47 order (36-41 the image-left eye, 42-47 the image-right eye). Differentiable
            with respect to ``crops``.

        Raises:
            ValueError: ``crops`` not ``(B, 3, S, S)`` or ``S < 16``.
        """
        if crops.ndim != 4 or crops.shape[1] != 3 or crops.shape[2] != crops.shape[3]:
            raise ValueError(f"EyeLandmarkNet expects aligned crops (B, 3, S, S), got {tuple(crops.shape)}")
        size = crops.shape[-1]
        if size < self.MIN_SIZE:
            raise ValueError(f"EyeLandmarkNet needs crops of at least {self.MIN_SIZE} px, got {size}")
        offsets = self.head(self.features(cut_band(crops.float(), self.cfg))).view(-1, N_POINTS, 2)
        return (self.mean_shape + OFFSET_SCALE * offsets) * float(size) - 0.5


def ear_torch(eye_points: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Differentiable eye aspect ratio of both eyes (Soukupova & Cech 2016, eq. 1).

    ``EAR = (|p2 − p6| + |p3 − p5|) / (2 |p1 − p4| + eps)`` per eye, the definition of
    :func:`a2v.face.ear.eye_aspect_ratio` (which has no ``eps``; the two agree to ~1e-7 on real
    landmarks). Distances are ``sqrt(|d|² + eps²)``, so coinciding points (a fully closed
    predicted eye) give a zero, not a NaN, gradient.

    Args:
        eye_points: ``(..., 12, 2)`` float (x, y) pixels, iBUG 36-47 order (as
            :class:`EyeLandmarkNet` returns, or ``landmarks[..., 36:48, :]`` of the shard).
        eps: added to the denominator (and, squared, under each square root); pixels.

    Returns:
        ``(..., 2)`` unit-less, the dtype of ``eye_points``: ``[..., 0]`` the image-left eye (iBUG
        36-41), ``[..., 1]`` the image-right eye (iBUG 42-47).

    Raises:
        ValueError: the last two axes are not ``(12, 2)``.
    """
    if eye_points.ndim < 2 or tuple(eye_points.shape[-2:]) != (N_POINTS, 2):
        raise ValueError(f"ear_torch expects (..., {N_POINTS}, 2) eye points, got {tuple(eye_points.shape)}")
    eyes = eye_points.unflatten(-2, (2, 6))  # (..., 2 eyes, 6 points, 2)

    def dist(i: int, j: int) -> torch.Tensor:
        return torch.sqrt((eyes[..., i, :] - eyes[..., j, :]).pow(2).sum(-1) + eps * eps)

    return (dist(1, 5) + dist(2, 4)) / (2.0 * dist(0, 3) + eps)
