"""The lip-sync expert loss: a frozen, pretrained SyncNet scores generated mouth windows against
their audio, for any recipe that generates consecutive frames.

Sources: Wav2Lip (Prajwal et al., ACM MM 2020, §3.2 "the expert lip-sync discriminator": a SyncNet
pretrained on real clips, frozen, its audio–video agreement on generated 5-frame windows is a
loss term of the generator) and OneShotA2V (Kumar et al. 2020, §3.2.3 and §4.1.5: the "sync
discriminator", a SyncNet on the lower half of the face, contrastive loss).

The network is the recipe's pretrained ``sync_discriminator`` (:data:`SYNC_EXPERT`,
:mod:`a2v.training.sync_discriminator`): trained by the ``pretrain`` rule on the experiment's
training clips, with its own seed (1; the LSE judge's is 0) and checkpoint
(``results/<exp>/pretrained/sync_discriminator``), on the face's lower half rather than the judge's
mouth box, so the LSE-C/D that evaluate reports come from a network the generator never saw.

A recipe offers it by listing :data:`SYNC_TERM` in its ``loss_keys`` and :data:`SYNC_EXPERT_TRAINER`
in its ``pretrained_networks``; a phase turns it on by weighting ``sync`` (config, like any loss).

a2v: Wav2Lip's expert outputs a cosine similarity and its loss is the BCE of it against "in
sync"; a2v's SyncNet is the contrastive one (an embedding distance d in [0, 2], margin 1), so the
term is OneShotA2V's ½·d² (the contrastive loss of a positive pair), averaged over every 5-frame
sub-window of the generated sequence.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

SYNC_FRAMES = 5
"""Frames per SyncNet window (Chung & Zisserman 2016: 5 frames, 0.2 s at 25 fps)."""

SYNC_TERM = "sync"
"""The loss key of the expert term in a phase's ``losses``."""

SYNC_EXPERT = "sync_discriminator"
"""The pretrained network's name (``pretrained.<name>`` in the config, the ``pretrain`` rule's wildcard)."""

SYNC_EXPERT_TRAINER = {SYNC_EXPERT: "a2v.training.sync_discriminator:train_sync_discriminator"}
"""``pretrained_networks`` entry a recipe adds to offer the expert."""

SYNC_TERM_DOC = ("lip-sync expert: ½·d² of the frozen pretrained sync_discriminator (SyncNet on the lower half, own seed "
                 "and rule, not the LSE judge) over every 5-frame window (Wav2Lip §3.2; OneShotA2V §3.2.3)")
"""What the ``sync`` term is, for recipes' loss tables."""


def sync_expert_loss(expert: torch.nn.Module, frames: torch.Tensor, mfcc: torch.Tensor) -> torch.Tensor:
    """½·mean d² of the expert over every 5-frame sub-window of a generated sequence.

    Args:
        expert: a frozen :class:`~a2v.training.sync_discriminator.SyncDiscriminator` (any S).
        frames: ``(B, L, 3, S, S)`` float in [-1, 1], L >= 5 consecutive generated frames.
        mfcc: ``(B, L, 20, 13)`` **raw** shard MFCC window of each frame (0.2 s centred on it).

    Returns:
        scalar float32; gradients reach ``frames`` only.

    Raises:
        ValueError: fewer than 5 frames, or ``mfcc`` not matching ``frames`` in B and L.
    """
    B, L = frames.shape[:2]
    if L < SYNC_FRAMES:
        raise ValueError(f"the sync expert needs windows of at least {SYNC_FRAMES} frames, got {L}")
    if tuple(mfcc.shape[:2]) != (B, L):
        raise ValueError(f"mfcc must be (B, L, …) = ({B}, {L}, …) like the frames, got {tuple(mfcc.shape)}")
    half = SYNC_FRAMES // 2
    windows = torch.stack([frames[:, c - half:c + half + 1] for c in range(half, L - half)], dim=1).flatten(0, 1)
    centre_mfcc = mfcc[:, half:L - half].flatten(0, 1)
    d = expert(windows.float(), centre_mfcc)
    return 0.5 * d.pow(2).mean()


def load_sync_expert(path: str | Path, device: torch.device | str, emit: Callable[[str], None] | None = None,
                     label: str = "") -> tuple[torch.nn.Module, dict]:
    """The frozen expert of a ``sync_discriminator`` checkpoint and the facts a step stores
    (``{"sync_discriminator": path}``); ``emit`` gets one log line naming it.

    Raises:
        FileNotFoundError: no such checkpoint. ValueError: another kind of checkpoint.
    """
    from a2v.training.sync_discriminator import load_sync_discriminator

    expert, facts = load_sync_discriminator(path, device)
    if emit is not None:
        share = facts.get("train_offset_share", float("nan"))
        emit(f"{label}sync expert {path} (step {facts.get('step')}, offset within ±1 frame on "
             f"{100 * share:.0f} % of its training clips; not the LSE judge)")
    return expert, {SYNC_EXPERT: str(path)}


__all__ = ["SYNC_EXPERT", "SYNC_EXPERT_TRAINER", "SYNC_FRAMES", "SYNC_TERM", "SYNC_TERM_DOC", "load_sync_expert",
           "sync_expert_loss"]
