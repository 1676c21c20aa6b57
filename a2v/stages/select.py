"""Stage 5, select: train/test split by clip and phoneme-balanced selection of the training clips.

Test clips are drawn first (seeded) from the experiment's speakers and are never trained on;
Algorithm 1 (:mod:`a2v.selection.balance`) then selects among the remaining clips. Output
``split.tsv``: dataset, speaker, clip_id, split (train / test / unselected), n_frames, and the
39-phoneme histogram of each clip (one column per phoneme).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from a2v.features.shard import ShardReader
from a2v.selection.balance import distance_to_uniform, select_balanced
from a2v.selection.phonemes import phoneme_histogram, phoneme_inventory
from a2v.stages.common import get_logger, write_table


def run(config: dict, exp: dict, shards: list[str | Path], out_tsv: str | Path, log_file=None) -> Path:
    """Write the experiment's split. Returns the TSV path.

    Raises:
        ValueError: too few clips for the requested test set.
    """
    log = get_logger("select", log_file)
    sel = exp["select"]
    rows = []
    for shard in shards:
        with ShardReader(shard) as reader:
            for clip_id in reader.clip_ids:
                attrs = reader.clip_attrs(clip_id)
                rows.append({"dataset": reader.attrs["dataset"], "speaker": reader.attrs["speaker"], "clip_id": clip_id,
                             "n_frames": int(attrs["n_frames"]), "hist": phoneme_histogram(attrs["phonemes"])})
    n = len(rows)
    n_test = sel["n_test"] if sel.get("n_test") is not None else int(round(sel["test_fraction"] * n))
    if not 1 <= n_test < n:
        raise ValueError(f"{n} clips cannot give {n_test} test clips and at least one training clip")
    rng = np.random.default_rng(sel["seed"])
    test = set(rng.choice(n, size=n_test, replace=False).tolist())
    pool = [i for i in range(n) if i not in test]
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
    inventory = phoneme_inventory()
    table = []
    for i, r in enumerate(rows):
        split = "test" if i in test else ("train" if i in train else "unselected")
        table.append({"dataset": r["dataset"], "speaker": r["speaker"], "clip_id": r["clip_id"], "split": split,
                      "n_frames": r["n_frames"], **dict(zip(inventory, r["hist"].tolist()))})
    df = pd.DataFrame(table)
    log.info("split: %s", df["split"].value_counts().to_dict())
    return write_table(df, out_tsv)


def read_split(path: str | Path) -> pd.DataFrame:
    """Read ``split.tsv``."""
    return pd.read_csv(path, sep="\t", dtype={"clip_id": str, "speaker": str, "dataset": str})
