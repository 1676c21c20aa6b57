"""LSE-D and LSE-C: lip-sync error distance and confidence of a SyncNet (Prajwal et al., Wav2Lip,
ACM MM 2020, §4.1; the offset search of Chung & Zisserman 2016, §4.1 / syncnet_python).

For a clip of T frames, every 5-frame video window centred on frame t (t = 2 … T − 3) is compared
with the audio window of frame t + o for each offset o ∈ [−max_offset, max_offset] (frames; 15
→ ±0.6 s), where t + o is inside the clip. ``D(o)`` = mean distance over those t.

* ``LSE-D = min_o D(o)`` (↓: in-sync mouths sit close to their audio),
* ``LSE-C = median_o D(o) − min_o D(o)`` (↑: a clear minimum means confident sync),
* ``offset = argmin_o D(o)`` (frames; 0 for a synchronised clip; positive o: the sound of frame t
  arrives o frames later, i.e. the audio lags the video).

Distances are the Euclidean distances of :class:`a2v.models.syncnet.SyncNet`'s unit embeddings.
"""

from __future__ import annotations

import numpy as np
import torch

from a2v.models.syncnet import N_FRAMES, SyncNet


def video_windows(mouths: torch.Tensor) -> torch.Tensor:
    """``(T, 3, H, W)`` mouth frames → ``(T − 4, 15, H, W)`` 5-frame windows centred on t = 2 … T − 3."""
    t = mouths.shape[0]
    if t < N_FRAMES:
        raise ValueError(f"a clip needs at least {N_FRAMES} frames for SyncNet, got {t}")
    return torch.stack([mouths[i : i + N_FRAMES].reshape(-1, *mouths.shape[2:]) for i in range(t - N_FRAMES + 1)])


@torch.no_grad()
def offset_distances(net: SyncNet, mouths: torch.Tensor, mfcc: torch.Tensor, max_offset: int = 15, batch: int = 256) -> np.ndarray:
    """``D(o)`` for o = −max_offset … max_offset.

    Args:
        net: a trained SyncNet in eval mode (on the device of the tensors).
        mouths: ``(T, 3, H, W)`` float in [-1, 1] mouth crops of the clip.
        mfcc: ``(T, 20, 13)`` float standardised MFCC windows of the clip's audio, one per frame.
        max_offset: largest shift in frames.
        batch: windows per forward pass.

    Returns:
        ``(2·max_offset + 1,)`` float64 mean distances (``nan`` for an offset with no overlap).

    Raises:
        ValueError: lengths differ or the clip is shorter than 5 frames.
    """
    if mouths.shape[0] != mfcc.shape[0]:
        raise ValueError(f"{mouths.shape[0]} video frames but {mfcc.shape[0]} audio windows")
    windows = video_windows(mouths)
    v = torch.cat([net.embed_video(windows[i : i + batch]) for i in range(0, len(windows), batch)])  # (T-4, E)
    a = torch.cat([net.embed_audio(mfcc[i : i + batch]) for i in range(0, len(mfcc), batch)])  # (T, E)
    centres = torch.arange(len(windows), device=v.device) + N_FRAMES // 2
    out = np.full(2 * max_offset + 1, np.nan)
    for k, o in enumerate(range(-max_offset, max_offset + 1)):
        idx = centres + o
        ok = (idx >= 0) & (idx < len(a))
        if ok.any():
            out[k] = float((v[ok] - a[idx[ok]]).norm(dim=1).mean())
    return out


def lse(distances: np.ndarray, max_offset: int | None = None) -> dict[str, float]:
    """LSE-D, LSE-C and the best offset from ``D(o)`` (see the module docstring).

    Args:
        distances: ``(2·max_offset + 1,)`` from :func:`offset_distances`.
        max_offset: inferred from the length when ``None``.

    Returns:
        ``{"lse_d": …, "lse_c": …, "offset": …}`` floats.
    """
    d = np.asarray(distances, np.float64)
    if max_offset is None:
        max_offset = (len(d) - 1) // 2
    valid = d[np.isfinite(d)]
    if valid.size == 0:
        raise ValueError("no offset has a distance")
    k = int(np.nanargmin(d))
    return {"lse_d": float(valid.min()), "lse_c": float(np.median(valid) - valid.min()), "offset": float(k - max_offset)}
