"""How good are the metric networks? The lip-reader's WER and SyncNet's sync detection on real
held-out clips — the numbers that say what WER and LSE-C/D of generated videos can mean.

Reads a finished ``train_judge`` run (its ``lipreader_split.tsv``, shards and both checkpoints)
and, over the split's test clips (never seen by the judges), prints:

* LipNet: WER (%) over all test sentences, per-word-slot accuracy (GRID: command, colour,
  preposition, letter, digit, adverb), and seconds per clip;
* SyncNet: LSE-D / LSE-C of the real clips, the share whose best offset is within ±1 frame, and
  the share of clips with audio delayed by ``--shift`` frames found within ±1 of that shift.

Usage::

    python benchmarks/judges.py --results results --dataset grid [--shift 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", default="results")
    ap.add_argument("--dataset", default="grid")
    ap.add_argument("--shift", type=int, default=10)
    args = ap.parse_args(argv)

    from a2v.features.shard import ShardReader
    from a2v.metrics.wer import word_error_rate
    from a2v.stages.select import read_split
    from a2v.training.lipreader import LipReader, clip_sentence
    from a2v.training.syncnet import SyncScorer

    res = Path(args.results)
    split = read_split(res / args.dataset / "lipreader_split.tsv")
    tests = split[split.split == "test"]
    reader = LipReader.load(res / "lipreader" / args.dataset / "checkpoint.pt")
    scorer = SyncScorer.load(res / "syncnet" / args.dataset / "checkpoint.pt")
    refs, hyps, sync, shifted = [], [], [], []
    t_lip = 0.0
    for speaker, group in tests.groupby("speaker"):
        with ShardReader(res / "features" / args.dataset / f"{speaker}.h5") as shard:
            for clip_id in group.clip_id:
                frames, mfcc = shard.read(clip_id, "frames"), shard.read(clip_id, "mfcc")
                refs.append(clip_sentence(shard.clip_attrs(clip_id)["words"]))
                t = time.perf_counter()
                hyps.append(reader.read_lips([frames])[0])
                t_lip += time.perf_counter() - t
                sync.append(scorer.score(frames, mfcc))
                late = np.concatenate([np.repeat(mfcc[:1], args.shift, axis=0), mfcc[: -args.shift]])
                shifted.append(scorer.score(frames, late))
    n = len(refs)
    wer = 100 * word_error_rate(refs, hyps)
    slots = np.array([[r.split()[i] == (h.split() + [""] * 6)[i] for i in range(6)] for r, h in zip(refs, hyps) if len(r.split()) == 6])
    print(f"test clips: {n} (never seen by the judges)")
    print(f"LipNet: WER {wer:.1f} % on real test clips; word accuracy per GRID slot (command colour prep letter digit adverb): "
          + " ".join(f"{100 * a:.0f}%" for a in slots.mean(axis=0)) + f"; {t_lip / n:.2f} s per clip")
    for r, h in list(zip(refs, hyps))[:5]:
        print(f"    said {r!r:34} read {h!r}")
    d = np.array([s["lse_d"] for s in sync])
    c = np.array([s["lse_c"] for s in sync])
    found = np.mean([abs(s["offset"]) <= 1 for s in sync])
    found_shift = np.mean([abs(s["offset"] - args.shift) <= 1 for s in shifted])
    print(f"SyncNet: real clips LSE-D {d.mean():.3f} ± {d.std(ddof=1):.3f}, LSE-C {c.mean():.3f} ± {c.std(ddof=1):.3f}; "
          f"best offset within ±1 frame of 0 on {100 * found:.0f} %; audio delayed {args.shift} frames found within ±1 on "
          f"{100 * found_shift:.0f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
