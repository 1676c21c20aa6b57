"""ClipWindows: torch-ready windows of frames and aligned audio features from a real shard."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from a2v.features.shard import ShardReader
from a2v.features.windows import ClipWindows

FEATURES = ("mfcc", "mfcc_cran", "mel", "f0", "f0_bin", "flow", "heatmaps", "landmarks", "ear", "pose")


def test_windows_cover_each_clip_with_aligned_features(s1_shard):
    ds = ClipWindows([s1_shard], length=16, stride=8, features=FEATURES)
    with ShardReader(s1_shard) as shard:
        n = {c: shard.n_frames(c) for c in shard.clip_ids}
        assert len(ds) == sum((t - 16) // 8 + 1 for t in n.values())
        i = 3
        clip, start = ds.windows[i]
        clip_id = ds.clips[clip][1]
        sample = ds[i]
        s = shard.attrs["crop_size"]
        assert sample["frames"].shape == (16, 3, s, s) and sample["frames"].dtype == torch.float32
        assert sample["reference"].shape == (3, s, s)
        expected = torch.from_numpy(shard.read(clip_id, "frames", slice(start, start + 16))).float() / 127.5 - 1
        torch.testing.assert_close(sample["frames"], expected.permute(0, 3, 1, 2))
        torch.testing.assert_close(sample["reference"], torch.from_numpy(shard.read(clip_id, "frames", 0)).float().permute(2, 0, 1) / 127.5 - 1)
        shapes = {k: tuple(sample[k].shape) for k in FEATURES}
        assert shapes == {
            "mfcc": (16, 20, 13), "mfcc_cran": (16, 35, 12), "mel": (16, 256), "f0": (16,), "f0_bin": (16,),
            "flow": (16, 2, s, s), "heatmaps": (16, 15, 96, 96), "landmarks": (16, 68, 2), "ear": (16, 2), "pose": (16, 3),
        }
        assert sample["f0_bin"].dtype == torch.int64
        np.testing.assert_array_equal(sample["mel"].numpy(), shard.read(clip_id, "mel", slice(start, start + 16)))
        heat = sample["heatmaps"]
        assert 0.0 <= float(heat.min()) and 0.9 < float(heat.amax(dim=(2, 3)).mean()) <= 1.0
        assert int(sample["start"]) == start and int(sample["clip"]) == clip


def test_random_reference_is_reproducible_and_filters(s1_shard):
    ds = ClipWindows([s1_shard], length=25, features=(), reference="random", seed=7, clip_ids=["lgbgzp"])
    assert {c[1] for c in ds.clips} == {"lgbgzp"} and len(ds) == 3
    refs = [ds.reference_frame(i) for i in range(len(ds))]
    assert refs == [ds.reference_frame(i) for i in range(len(ds))]
    torch.testing.assert_close(ds[1]["reference"], ds[1]["reference"])
    other = ClipWindows([s1_shard], length=25, features=(), reference="random", seed=8, clip_ids=["lgbgzp"])
    assert [other.reference_frame(i) for i in range(len(other))] != refs
    assert all(0 <= r < ds.clips[0][2] for r in refs)


def test_dataloader_workers_batch_windows(s1_shard):
    ds = ClipWindows([s1_shard], length=8, stride=25, features=("mfcc", "f0_bin"))
    batch = next(iter(DataLoader(ds, batch_size=4, num_workers=2)))
    s = ds[0]["frames"].shape[-1]
    assert batch["frames"].shape == (4, 8, 3, s, s) and batch["mfcc"].shape == (4, 8, 20, 13)


def test_bad_arguments(s1_shard):
    with pytest.raises(ValueError, match="unknown window features"):
        ClipWindows([s1_shard], length=4, features=("pitch",))
    with pytest.raises(ValueError, match="length and stride"):
        ClipWindows([s1_shard], length=0)
    with pytest.raises(ValueError, match="reference"):
        ClipWindows([s1_shard], length=4, reference="middle")
    assert len(ClipWindows([s1_shard], length=10_000)) == 0
    with pytest.raises(IndexError):
        ClipWindows([s1_shard], length=4)[10_000]


def test_frame_windows_are_consecutive_frames_of_one_clip_with_one_reference(s1_shard):
    """FrameWindows (MAN's samples for the lip-sync expert): L consecutive FrameDataset samples of one
    clip, one reference for the window, and the shard's raw MFCC beside the standardised one."""
    from a2v.features.normalizer import fit_normalizer
    from a2v.training.data import FrameDataset, FrameWindows

    with ShardReader(s1_shard) as shard:
        clips = [(str(s1_shard), c) for c in shard.clip_ids]
        n = [shard.n_frames(c) for c in shard.clip_ids]
        raw = shard.read(shard.clip_ids[1], "mfcc")
    frames = FrameDataset(clips, fit_normalizer(clips), 64, ("flow", "mfcc", "mel", "f0_bin", "energy_bin"), 5)
    windows = FrameWindows(frames, 5)
    assert len(windows) == sum(t - 4 for t in n)
    i = n[0] - 4 + 7  # the second clip's window starting at frame 7
    w = windows[(i, 123)]
    assert w["target"].shape == (5, 3, 64, 64) and w["mfcc"].shape == (5, 20, 13) and w["f0_bin"].shape == (5,)
    assert w["clip"].tolist() == [1] * 5 and w["t"].tolist() == [7, 8, 9, 10, 11]
    assert all(torch.equal(w["reference"][0], r) for r in w["reference"])
    single = frames[(n[0] + 9, 123)]
    assert torch.equal(w["target"][2], single["target"]) and torch.equal(w["mfcc"][2], single["mfcc"])
    torch.testing.assert_close(w["mfcc_raw"], torch.from_numpy(raw[7:12]), rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="no training clip has 1000 frames"):
        FrameWindows(frames, 1000)
