"""MAN's loss terms, weighted, for the generator (+ predictor) and the discriminator.

Loss names (the keys of a phase's ``losses`` mapping):

=================  ==================================================  =====================
key                term                                                paper
=================  ==================================================  =====================
``adv``            adversarial loss on the patch logits                 supp. Eq. 2
``l1_lower``       L1 on the lower half of the frame                    supp. Eq. 3
``fm``             discriminator feature matching                       supp. Eq. 4
``perceptual``     VGG perceptual L1 (:mod:`a2v.losses.perceptual`)     supp. Eq. 5
``cam``            adversarial loss on the discriminator's CAM logits   Eq. 3 / supp. Eq. 6
``flow_mse``       flow predictor MSE (``motion="flow"``)               supp. §2.1.6
``keypoint_mse``   heatmap predictor MSE (``motion="keypoints"``)       supp. §2.1.6
``sync``           lip-sync expert, ½·d² over 5-frame windows           a2v (Wav2Lip §3.2)
                   (:mod:`a2v.losses.sync_expert`; needs
                   ``training.sequence_length`` >= 5)
=================  ==================================================  =====================

The perceptual term needs a :class:`~a2v.losses.perceptual.PerceptualLoss` (a frozen VGG with its
weights); which backbone it uses is the run's choice (``training.perceptual``).

A weight of 0 skips the term entirely: it is not computed and not in the returned dict.
Returned dicts hold the **unweighted** terms plus ``total = Σ weight · term``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

from a2v.losses.adversarial import GAN_LOSSES, d_adversarial, g_adversarial
from a2v.losses.cam import d_cam, g_cam
from a2v.losses.feature_matching import feature_matching
from a2v.losses.predictor import flow_mse, heatmap_mse
from a2v.losses.reconstruction import lower_half_l1
from a2v.losses.sync_expert import SYNC_TERM

from a2v.training.phases import check_weights

LOSS_KEYS = ("adv", "l1_lower", "fm", "perceptual", "cam", "flow_mse", "keypoint_mse", SYNC_TERM)
"""Every loss weight name a MAN phase may set."""


class GeneratorLoss:
    """Generator (and jointly trained predictor) objective.

    Args:
        weights: loss name → weight (missing names weigh 0).
        gan_loss: ``"original"`` | ``"bce"`` | ``"hinge"`` | ``"lsgan"`` for ``adv`` and ``cam``.
        flow_scale: pixels per unit for ``flow_mse``.
        perceptual: the perceptual loss network; required when ``perceptual`` weighs > 0.

    Call:
        ``fake, real (B, 3, S, S)``; ``d_fake`` / ``d_real`` discriminator outputs (lists of
        per-scale dicts) — needed when ``adv``/``cam`` (``d_fake``) or ``fm`` (both) weigh > 0;
        ``motion_pred`` / ``motion_target``: predicted and target flow ``(B, 2, S, S)`` px or
        heatmaps ``(B, 15, 96, 96)`` — needed when ``flow_mse``/``keypoint_mse`` weigh > 0.
        Returns dict of the computed terms and ``total`` (scalar tensors).

    Raises:
        ValueError: unknown adversarial form; ``perceptual`` weighted without a network.
    """

    def __init__(
        self,
        weights: Mapping[str, float],
        gan_loss: str = "original",
        flow_scale: float = 1.0,
        perceptual: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ):
        if gan_loss not in GAN_LOSSES:
            raise ValueError(f"unknown adversarial loss {gan_loss!r}; supported: {', '.join(GAN_LOSSES)}")
        self.weights = {k: v for k, v in check_weights(weights, LOSS_KEYS).items() if v > 0}
        self.gan_loss = gan_loss
        self.flow_scale = float(flow_scale)
        if "perceptual" in self.weights and perceptual is None:
            raise ValueError("loss term 'perceptual' has a positive weight but no perceptual network was given")
        self.perceptual = perceptual

    def active(self) -> list[str]:
        """Names of the terms with a positive weight, in :data:`LOSS_KEYS` order."""
        return [k for k in LOSS_KEYS if k in self.weights]

    def __call__(
        self,
        fake: torch.Tensor,
        real: torch.Tensor,
        d_fake: Sequence[dict] | None = None,
        d_real: Sequence[dict] | None = None,
        motion_pred: torch.Tensor | None = None,
        motion_target: torch.Tensor | None = None,
        sync: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``sync``: the expert's term, computed by the step on the windows of generated frames."""
        w = self.weights
        terms: dict[str, torch.Tensor] = {}
        if "adv" in w:
            terms["adv"] = g_adversarial([o["logits"] for o in _need(d_fake, "adv", "d_fake")], self.gan_loss)
        if "l1_lower" in w:
            terms["l1_lower"] = lower_half_l1(fake, real)
        if "fm" in w:
            terms["fm"] = feature_matching(_need(d_real, "fm", "d_real"), _need(d_fake, "fm", "d_fake"))
        if "perceptual" in w:
            terms["perceptual"] = self.perceptual(fake, real)
        if "cam" in w:
            terms["cam"] = g_cam(_need(d_fake, "cam", "d_fake"), self.gan_loss)
        if "flow_mse" in w:
            terms["flow_mse"] = flow_mse(_need(motion_pred, "flow_mse", "motion_pred"), _need(motion_target, "flow_mse", "motion_target"), self.flow_scale)
        if "keypoint_mse" in w:
            terms["keypoint_mse"] = heatmap_mse(_need(motion_pred, "keypoint_mse", "motion_pred"), _need(motion_target, "keypoint_mse", "motion_target"))
        if SYNC_TERM in w:
            terms[SYNC_TERM] = _need(sync, SYNC_TERM, "sync")
        terms["total"] = _weighted_total(terms, w, fake)
        return terms


class DiscriminatorLoss:
    """Discriminator objective: ``adv`` on the patch logits and ``cam`` on the CAM logits.

    Uses the same weights as the phase (``total = w_adv · adv + w_cam · cam``); the other keys are
    ignored. Call with ``d_real``, ``d_fake`` (per-scale output lists; the fake ones computed from
    detached frames). Returns the computed terms and ``total``.
    """

    def __init__(self, weights: Mapping[str, float], gan_loss: str = "original"):
        if gan_loss not in GAN_LOSSES:
            raise ValueError(f"unknown adversarial loss {gan_loss!r}; supported: {', '.join(GAN_LOSSES)}")
        self.weights = {k: v for k, v in check_weights(weights, LOSS_KEYS).items() if v > 0 and k in ("adv", "cam")}
        self.gan_loss = gan_loss

    def active(self) -> list[str]:
        """Names of the computed terms."""
        return [k for k in ("adv", "cam") if k in self.weights]

    def __call__(self, d_real: Sequence[dict], d_fake: Sequence[dict]) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        if "adv" in self.weights:
            terms["adv"] = d_adversarial([o["logits"] for o in d_real], [o["logits"] for o in d_fake], self.gan_loss)
        if "cam" in self.weights:
            terms["cam"] = d_cam(d_real, d_fake, self.gan_loss)
        terms["total"] = _weighted_total(terms, self.weights, d_real[0]["logits"])
        return terms


def _need(value, term: str, name: str):
    if value is None:
        raise ValueError(f"loss term {term!r} has a positive weight but {name} was not given")
    return value


def _weighted_total(terms: Mapping[str, torch.Tensor], weights: Mapping[str, float], like: torch.Tensor) -> torch.Tensor:
    total = like.new_zeros((), dtype=torch.float32)
    for k, v in terms.items():
        total = total + weights[k] * v
    return total
