"""Stage 5, select: train/test split by clip and phoneme-balanced selection of the training clips.

Test clips are drawn first (seeded) from the experiment's speakers and are never trained on;
``select.n_train`` (MAN §4.2: 5000 training / 1000 test GRID videos) then caps the training pool,
drawn seeded from the rest, and Algorithm 1 (:mod:`a2v.selection.balance`) selects among it. A
corpus without transcripts (every phoneme histogram empty, e.g. VoxCeleb2) cannot be balanced:
Algorithm 1 is skipped with a log line and the whole pool is kept.

The dataset's ``unseen_speakers`` (their shards given as ``unseen_shards``) are a second test set,
split ``test_unseen``: every clip of theirs, or ``select.n_test_unseen`` drawn seeded. No model or
judge trains on them.

Output ``split.tsv``: dataset, speaker, clip_id, split (train / test / test_unseen / unselected /
unused), n_frames, and the 39-phoneme histogram of each clip (one column per phoneme). The number
of clips per split is logged and printed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from a2v.features.shard import ShardReader
from a2v.selection.balance import distance_to_uniform, select_balanced
from a2v.selection.phonemes import phoneme_histogram, phoneme_inventory
from a2v.stages.common import get_logger, write_table


TEST_SPLITS = ("test", "test_unseen")
"""The splits the generate and evaluate stages work on: seen and unseen speakers' test clips."""


def _rows(shards: list[str | Path]) -> list[dict]:
    rows = []
    for shard in shards:
        with ShardReader(shard) as reader:
            for clip_id in reader.clip_ids:
                attrs = reader.clip_attrs(clip_id)
                rows.append({"dataset": reader.attrs["dataset"], "speaker": reader.attrs["speaker"], "clip_id": clip_id,
                             "n_frames": int(attrs["n_frames"]), "hist": phoneme_histogram(attrs["phonemes"])})
    return rows


def run(config: dict, exp: dict, shards: list[str | Path], out_tsv: str | Path, log_file=None,
        unseen_shards: list[str | Path] | None = None) -> Path:
    """Write the experiment's split. Returns the TSV path.

    Args:
        shards: the feature shards of the experiment's speakers.
        unseen_shards: the shards of the dataset's ``unseen_speakers`` (split ``test_unseen``).

    Raises:
        ValueError: too few clips for the requested test set; a shard of ``unseen_shards`` whose
            speaker is also in ``shards``.
    """
    log = get_logger("select", log_file)
    sel = exp["select"]
    rows = _rows(shards)
    unseen = _rows(unseen_shards or [])
    both = {(r["dataset"], r["speaker"]) for r in rows} & {(r["dataset"], r["speaker"]) for r in unseen}
    if both:
        raise ValueError(f"speakers {sorted(both)} are both training speakers and unseen speakers")
    n = len(rows)
    n_test = sel["n_test"] if sel.get("n_test") is not None else int(round(sel["test_fraction"] * n))
    if not 1 <= n_test < n:
        raise ValueError(f"{n} clips cannot give {n_test} test clips and at least one training clip")
    rng = np.random.default_rng(sel["seed"])
    test = set(rng.choice(n, size=n_test, replace=False).tolist())
    rest = [i for i in range(n) if i not in test]
    n_train = sel.get("n_train")
    if n_train is not None and n_train < len(rest):
        pool = sorted(rng.choice(rest, size=n_train, replace=False).tolist())
        log.info("select.n_train: %d of the %d non-test clips drawn as the training pool; the others are 'unused'",
                 n_train, len(rest))
    else:
        pool = rest
    unused = set(rest) - set(pool)
    hists = np.stack([rows[i]["hist"] for i in pool])
    if sel["balance"]["enabled"] and not hists.sum() > 0:
        log.warning("Algorithm 1 skipped: no training clip has a transcript (phoneme histograms are empty); "
                    "all %d clips are kept", len(pool))
        train = set(pool)
    elif sel["balance"]["enabled"]:
        n_min = max(1, int(round(sel["balance"]["n_min_fraction"] * len(pool))))
        n_max = max(n_min, int(round(sel["balance"]["n_max_fraction"] * len(pool))))
        chosen, dist = select_balanced(hists, n_min, n_max, sel["balance"]["k"], sel["seed"])
        train = {pool[i] for i in chosen}
        support = np.flatnonzero(hists.sum(axis=0) > 0)
        log.info("Algorithm 1: %d of %d training clips selected; distance to uniform %.4f (all clips %.4f)",
                 len(train), len(pool), dist, distance_to_uniform(hists.sum(axis=0), support))
    else:
        train = set(pool)
    n_unseen = sel.get("n_test_unseen")
    unseen_test = set(range(len(unseen)))
    if n_unseen is not None and n_unseen < len(unseen):
        unseen_test = set(np.random.default_rng(sel["seed"]).choice(len(unseen), size=n_unseen, replace=False).tolist())
    inventory = phoneme_inventory()
    table = []
    for i, r in enumerate(rows):
        split = "test" if i in test else "train" if i in train else "unused" if i in unused else "unselected"
        table.append({"dataset": r["dataset"], "speaker": r["speaker"], "clip_id": r["clip_id"], "split": split,
                      "n_frames": r["n_frames"], **dict(zip(inventory, r["hist"].tolist()))})
    for i, r in enumerate(unseen):
        table.append({"dataset": r["dataset"], "speaker": r["speaker"], "clip_id": r["clip_id"],
                      "split": "test_unseen" if i in unseen_test else "unused",
                      "n_frames": r["n_frames"], **dict(zip(inventory, r["hist"].tolist()))})
    df = pd.DataFrame(table)
    counts = {k: int(v) for k, v in df["split"].value_counts().items()}
    speakers = {k: sorted(g["speaker"].unique()) for k, g in df.groupby("split")}
    log.info("split: %s; speakers: %s", counts, {k: len(v) for k, v in speakers.items()})
    print(f"{out_tsv}: " + ", ".join(f"{k} {counts[k]} clips ({len(speakers[k])} speakers)" for k in sorted(counts)))
    return write_table(df, out_tsv)


def read_split(path: str | Path) -> pd.DataFrame:
    """Read ``split.tsv``."""
    return pd.read_csv(path, sep="\t", dtype={"clip_id": str, "speaker": str, "dataset": str})
