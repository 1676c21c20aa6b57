"""How good are the metric networks? The lip-reader's WER and SyncNet's sync detection on real
held-out clips — the numbers that say what WER and LSE-C/D of generated videos can mean.

Reads a finished ``train_judge`` run (its ``lipreader_split.tsv``, shards and both checkpoints)
and, over the split's test clips (never seen by the judges), prints:

* LipNet: WER (%) over all test sentences with each decoder (GRID-grammar Viterbi, greedy), the
  per-word-slot accuracy (GRID: command, colour, preposition, letter, digit, adverb), seconds per
  clip, and the WER of a reader that sees nothing (the most frequent training word in every slot)
  and the chance of each slot, the floor a lip-reader must beat;
* SyncNet: LSE-D / LSE-C of the real clips, the share whose best offset is within ±1 frame, and
  the share of clips with audio delayed by ``--shift`` frames found within ±1 of that shift.

Usage::

    python benchmarks/judges.py --results results --dataset grid [--shift 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", default="results")
    ap.add_argument("--dataset", default="grid")
    ap.add_argument("--shift", type=int, default=10)
    args = ap.parse_args(argv)

    from a2v.features.shard import open_shards
    from a2v.judges.ctc import GRID_SLOTS
    from a2v.models.lipreader import GRID_VOCABULARY
    from a2v.metrics.wer import word_error_rate
    from a2v.stages.select import read_split
    from a2v.judges import LipReader, SyncScorer, clip_sentence

    res = Path(args.results)
    split = read_split(res / args.dataset / "lipreader_split.tsv")
    tests = split[split.split == "test"]
    reader = LipReader.load(res / "lipreader" / args.dataset / "checkpoint.pt")
    scorer = SyncScorer.load(res / "syncnet" / args.dataset / "checkpoint.pt")
    refs, hyps, greedy, sync, shifted = [], [], [], [], []
    t_lip = 0.0
    # every shard of the dataset, one reader per speaker (a shard may hold several: speakers_per_shard)
    shards = open_shards(sorted((res / "features" / args.dataset).glob("*.h5")))
    for speaker, group in tests.groupby("speaker"):
        shard = shards[(args.dataset, str(speaker))]
        for clip_id in group.clip_id:
            frames, mfcc = shard.read(clip_id, "frames"), shard.read(clip_id, "mfcc")
            refs.append(clip_sentence(shard.clip_attrs(clip_id)["words"]))
            t = time.perf_counter()
            hyps.append(reader.read_lips([frames], "grid_grammar")[0])
            t_lip += time.perf_counter() - t
            greedy.append(reader.read_lips([frames], "greedy")[0])
            sync.append(scorer.score(frames, mfcc))
            late = np.concatenate([np.repeat(mfcc[:1], args.shift, axis=0), mfcc[: -args.shift]])
            shifted.append(scorer.score(frames, late))
    n = len(refs)
    train_sentences = []
    for speaker, group in split[split.split != "test"].groupby("speaker"):
        shard = shards[(args.dataset, str(speaker))]
        train_sentences += [clip_sentence(shard.clip_attrs(c)["words"]).split() for c in group.clip_id]
    for shard in shards.values():
        shard.close()
    majority = " ".join(Counter(s[i] for s in train_sentences if len(s) == 6).most_common(1)[0][0] for i in range(6))
    blind = 100 * word_error_rate(refs, [majority] * n)
    slots = np.array([[r.split()[i] == (h.split() + [""] * 6)[i] for i in range(6)] for r, h in zip(refs, hyps) if len(r.split()) == 6])
    print(f"test clips: {n} (never seen by the judges)")
    print(f"LipNet: WER {100 * word_error_rate(refs, hyps):.1f} % on real test clips with GRID-grammar decoding, "
          f"{100 * word_error_rate(refs, greedy):.1f} % with greedy decoding; {t_lip / n:.2f} s per clip")
    print("    word accuracy per GRID slot (command colour prep letter digit adverb): "
          + " ".join(f"{100 * a:.0f}%" for a in slots.mean(axis=0)) + " (chance " + " ".join(f"{100 / len(GRID_VOCABULARY[s]):.0f}%" for s in GRID_SLOTS) + ")")
    print(f"    a reader that sees nothing (always {majority!r}, the training clips' most frequent words): WER {blind:.1f} %")
    for r, h, g in list(zip(refs, hyps, greedy))[:5]:
        print(f"    said {r!r:34} read {h!r:34} greedy {g!r}")
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
