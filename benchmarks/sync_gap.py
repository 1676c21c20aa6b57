"""How much a generator games its own sync discriminator: LSE-D / LSE-C of the same videos by the
LSE judge (SyncNet on the mouth box, ``results/syncnet/<dataset>``) and by the experiment's sync
discriminator (SyncNet on the lower half of the face, ``results/<exp>/pretrained/sync_discriminator``,
OneShotA2V §3.2.3), on the experiment's generated test videos and on the real test clips.

A generator trained against its sync D can lower that network's distance without the lips moving
as speech does; the judge it never saw is the honest measure. The gap between the two on generated
videos, next to the same gap on real clips, shows how much of the sync D's verdict is gamed.

Usage::

    python benchmarks/sync_gap.py --results results --experiment oneshota2v_grid --dataset grid

Prints one line per (videos, network) with mean LSE-D, LSE-C and the share of clips whose best
offset is within ±1 frame.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", default="results")
    ap.add_argument("--experiment", required=True)
    ap.add_argument("--dataset", default="grid")
    args = ap.parse_args(argv)

    from a2v.features.shard import open_shards
    from a2v.features.windows import frames_to_tensor
    from a2v.io.video import read_frames
    from a2v.judges.syncnet import SyncScorer
    from a2v.training.sync_discriminator import load_sync_discriminator
    from a2v.training.syncnet import lower_half

    res = Path(args.results)
    judge = SyncScorer.load(res / "syncnet" / args.dataset / "checkpoint.pt")
    sync_d, _ = load_sync_discriminator(res / args.experiment / "pretrained" / "sync_discriminator" / "checkpoint.pt")
    own = SyncScorer(sync_d.net, sync_d.normalizer)
    cfg = sync_d.net.cfg
    videos = pd.read_csv(res / args.experiment / "videos" / "videos.tsv", sep="\t")
    scores: dict[tuple[str, str], list[dict]] = {}
    # every shard of the dataset, one reader per speaker (a shard may hold several: speakers_per_shard)
    shards = open_shards(sorted((res / "features" / args.dataset).glob("*.h5")))
    for row in videos.itertuples(index=False):
        shard = shards[(args.dataset, str(row.speaker))]
        real, mfcc = shard.read(row.clip_id, "frames"), shard.read(row.clip_id, "mfcc")
        fake = read_frames(row.frames, size=(real.shape[2], real.shape[1]))[: len(real)]
        for kind, frames in (("generated", fake), ("real", real)):
            scores.setdefault((kind, "LSE judge (mouth box)"), []).append(judge.score(frames, mfcc))
            halves = lower_half(frames_to_tensor(frames), cfg.mouth_width, cfg.mouth_height)
            scores.setdefault((kind, "sync D (lower half)"), []).append(
                own.score_tensors(halves, torch.from_numpy(own.normalizer.mfcc(mfcc))))
    print(f"{args.experiment}: {len(videos)} test clips")
    for (kind, net), rows in scores.items():
        d = np.mean([r["lse_d"] for r in rows])
        c = np.mean([r["lse_c"] for r in rows])
        share = np.mean([abs(r["offset"]) <= 1 for r in rows])
        print(f"  {kind:9s} by {net:22s}: LSE-D {d:.3f}  LSE-C {c:.3f}  offset within ±1 frame {100 * share:.0f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
