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

Output ``selection.json`` (when asked for; the Snakemake checkpoint ``select`` writes it beside
``split.tsv``): what Algorithm 1 did, so the report draws CRAN's Fig. 3 (phoneme histogram before
and after selection) without re-reading shards — see :func:`selection_summary` for its keys. The
distance to uniform before (all candidate clips) and after (the selected ones) is logged too.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from a2v.features.shard import ShardReader
from a2v.selection.balance import Selection, distance_to_uniform, select_balanced
from a2v.selection.phonemes import phoneme_histogram, phoneme_inventory
from a2v.stages.common import get_logger, write_table


TEST_SPLITS = ("test", "test_unseen")
"""The splits the generate and evaluate stages work on: seen and unseen speakers' test clips."""


def _rows(shards: list[str | Path]) -> list[dict]:
    """One row per clip of ``shards``, each with its own speaker (a shard may hold several)."""
    rows = []
    for shard in shards:
        with ShardReader(shard) as reader:
            for key in reader.clip_ids:
                attrs = reader.clip_attrs(key)
                speaker, clip_id = reader.split(key)
                rows.append({"dataset": reader.attrs["dataset"], "speaker": speaker, "clip_id": clip_id,
                             "n_frames": int(attrs["n_frames"]), "hist": phoneme_histogram(attrs["phonemes"])})
    return rows


SELECTION_SOURCE = "CRAN (Song et al.), §3.3 and supplement Algorithm 1"


def selection_summary(rows: list[dict], pool: list[int], train: set[int], status: str, result: Selection | None,
                      seed: int) -> dict:
    """The content of ``selection.json``: Algorithm 1's candidates, choice and distances.

    Args:
        rows: the experiment's clips (``dataset``, ``speaker``, ``clip_id``, ``hist`` (39,) int).
        pool: indices into ``rows`` of the candidates F_N (the training pool).
        train: indices into ``rows`` of the clips kept for training (F_n, or the whole pool when
            Algorithm 1 did not run).
        status: ``applied``, or why not (disabled / skipped).
        result: Algorithm 1's result (None unless applied).

    Returns:
        JSON-ready dict: ``source``, ``algorithm1`` (status), ``phonemes`` (the 39, inventory
        order), ``histogram_before`` / ``histogram_after`` (phoneme counts, int, over F_N / over
        the training clips), ``support`` (phonemes U is uniform over: those occurring in F_N),
        ``distance`` (its definition), ``distance_before`` / ``distance_after`` (float, None
        without phonemes), ``n_candidates``, ``n_selected``, ``n_min``, ``n_max``, ``k``,
        ``seed``, ``delta`` (initial δ, None for +inf), ``phoneme_rank`` (R_ph, rarest first),
        ``draws`` (``[n, distance]`` per iteration), ``selected`` (``[dataset, speaker,
        clip_id]`` of the training clips; in Algorithm 1's rank order when applied).
    """
    inventory = list(phoneme_inventory())
    before = np.sum([rows[i]["hist"] for i in pool], axis=0)
    chosen = [pool[i] for i in result.indices] if result is not None else [i for i in pool if i in train]
    after = np.sum([rows[i]["hist"] for i in chosen], axis=0)
    support = np.flatnonzero(before > 0)
    dist = (lambda h: distance_to_uniform(h, support)) if support.size else (lambda h: None)
    out = {
        "source": SELECTION_SOURCE, "algorithm1": status, "phonemes": inventory,
        "histogram_before": [int(x) for x in before], "histogram_after": [int(x) for x in after],
        "support": [inventory[i] for i in support],
        "distance": "total variation (half L1) to the uniform distribution over the support (a2v: the paper names no distance)",
        "distance_before": dist(before), "distance_after": dist(after),
        "n_candidates": len(pool), "n_selected": len(chosen), "seed": seed,
        "n_min": None, "n_max": None, "k": None, "delta": None, "phoneme_rank": None, "draws": None,
        "selected": [[rows[i]["dataset"], rows[i]["speaker"], rows[i]["clip_id"]] for i in chosen],
    }
    if result is not None:
        out.update(n_min=result.n_min, n_max=result.n_max, k=result.k,
                   delta=None if math.isinf(result.delta) else result.delta,
                   phoneme_rank=[inventory[i] for i in result.phoneme_rank],
                   draws=[[m, d] for m, d in result.draws])
    return out


def read_selection(path: str | Path) -> dict:
    """Read ``selection.json`` (:func:`selection_summary`'s dict)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def run(config: dict, exp: dict, shards: list[str | Path], out_tsv: str | Path, log_file=None,
        unseen_shards: list[str | Path] | None = None, selection_json: str | Path | None = None) -> Path:
    """Write the experiment's split. Returns the TSV path.

    Args:
        shards: the feature shards of the experiment's speakers (one or several speakers each;
            every clip keeps its own speaker in ``split.tsv``).
        unseen_shards: the shards of the dataset's ``unseen_speakers`` (split ``test_unseen``):
            every clip in them is an unseen speaker's (shards never mix the two:
            :func:`a2v.datasets.source.speaker_shards`).
        selection_json: where to write ``selection.json`` (:func:`selection_summary`); None: not written.

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
    result = None
    if sel["balance"]["enabled"] and not hists.sum() > 0:
        status = "skipped: no training clip has a transcript (phoneme histograms are empty)"
        log.warning("Algorithm 1 skipped: no training clip has a transcript (phoneme histograms are empty); "
                    "all %d clips are kept", len(pool))
        train = set(pool)
    elif sel["balance"]["enabled"]:
        n_min = max(1, int(round(sel["balance"]["n_min_fraction"] * len(pool))))
        n_max = max(n_min, int(round(sel["balance"]["n_max_fraction"] * len(pool))))
        result = select_balanced(hists, n_min, n_max, sel["balance"]["k"], sel["seed"])
        status = "applied"
        train = {pool[i] for i in result.indices}
        log.info("Algorithm 1 (CRAN §3.3): n = %d of N = %d candidate clips selected (n ~ U(%d, %d), k = %d, seed %d); "
                 "distance to uniform (total variation over the %d phonemes of the candidates): "
                 "before %.4f (all N), after %.4f (top n)", result.n, len(pool), n_min, n_max,
                 result.k, sel["seed"], len(result.support), result.distance_all, result.distance)
        log.info("Algorithm 1 draws (n: distance): %s", ", ".join(f"{m}: {d:.4f}" for m, d in result.draws))
    else:
        status = "disabled (select.balance.enabled: false)"
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
    if selection_json is not None:
        summary = selection_summary(rows, pool, train, status, result, sel["seed"])
        path = Path(selection_json)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(summary, indent=1), encoding="utf-8")
        os.replace(tmp, path)
        log.info("selection: %s (phoneme histograms before/after: %s)", path, status)
    return write_table(df, out_tsv)


def read_split(path: str | Path) -> pd.DataFrame:
    """Read ``split.tsv``."""
    return pd.read_csv(path, sep="\t", dtype={"clip_id": str, "speaker": str, "dataset": str})
