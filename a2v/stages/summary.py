"""Per-stage summary of a dataset's preprocessing: clips and frames in, kept and skipped, by cause.

Reads the per-clip outcome tables that the extract, align and features stages write for each
shard (``interim/<dataset>/<shard>/{extract,align}.tsv``, ``features/<dataset>/<shard>.tsv``; a
shard is one speaker, or several with ``speakers_per_shard``, whose tables then have a ``speaker``
column) and writes one table, a row per (stage, speaker) plus a row per stage for all speakers:

``stage, speaker, clips_in, clips_ok, clips_skipped, frames_in, frames_kept[, clips_word_alignment_rejected], skipped_<Kind>...``

``frames_in`` / ``frames_kept`` are the video frames (at the pipeline's fps) of the clips that
entered / left the stage; for align, ``frames_kept`` counts only the frames of the longest run
within the head-pose limits (CRAN §4.2). ``skipped_<Kind>`` counts the skipped clips by error
class (``MediaError``: unreadable, truncated, silent, no audio, low sample rate; ``NoFaceError``;
``MultipleFacesError``; ``PoseRejectedError``; ...).

``clips_word_alignment_rejected`` (present when the dataset's ``index.tsv`` is given, as the
workflow does) counts, among the clips that entered the stage, those whose word alignment file
exists but was not used by ingest: its words disagree with the clip's code, or it is unreadable
(GRID, :func:`a2v.datasets.grid.alignment_rejected`; such a clip keeps the words of its code,
without timings).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from a2v.datasets.grid import alignment_rejected
from a2v.datasets.record import read_index
from a2v.stages.common import get_logger, write_table

STAGES = ("extract", "align", "features")


def _frames(df: pd.DataFrame, column: str) -> int:
    if column not in df:
        return 0
    return int(pd.to_numeric(df[column], errors="coerce").fillna(0).sum())


def stage_row(stage: str, speaker: str, df: pd.DataFrame, frames_in: int) -> dict:
    """One summary row from a stage's per-clip outcome table."""
    ok = df[df["status"] == "ok"]
    skipped = df[df["status"] == "skipped"]
    kept_col = {"extract": "n_frames", "align": "frames_kept", "features": "n_frames"}[stage]
    row = {
        "stage": stage, "speaker": speaker, "clips_in": len(df), "clips_ok": len(ok), "clips_skipped": len(skipped),
        "frames_in": frames_in, "frames_kept": _frames(ok, kept_col),
    }
    kinds = skipped["kind"] if "kind" in skipped else pd.Series(["error"] * len(skipped))
    for kind, n in kinds.replace("", "error").value_counts().sort_index().items():
        row[f"skipped_{kind}"] = int(n)
    return row


def layout_tables(results_dir: str | Path, dataset: str, speakers: list[str] | dict[str, list[str]]) -> dict[str, dict]:
    """The outcome tables of the shards in the workflow's layout below ``results_dir``, and the
    dataset's ``index.tsv`` (key ``index``).

    Args:
        speakers: ``{shard name: its speakers}`` (:func:`a2v.datasets.source.speaker_shards`; key
            ``speakers`` of each entry), or a list of speaker ids, one shard each.
    """
    res = Path(results_dir)
    shards = speakers if isinstance(speakers, dict) else {spk: [spk] for spk in speakers}
    return {
        name: {
            "index": res / dataset / "index.tsv",
            "extract": res / "interim" / dataset / name / "extract.tsv",
            "align": res / "interim" / dataset / name / "align.tsv",
            "features": res / "features" / dataset / f"{name}.tsv",
            "speakers": list(members),
        }
        for name, members in shards.items()
    }


def _speaker_tables(name: str, paths: dict) -> dict[str, dict[str, pd.DataFrame]]:
    """``{speaker: {stage: its rows}}`` of one shard's outcome tables; a table with a ``speaker``
    column (a shard of several speakers) is split by it."""
    dfs = {stage: pd.read_csv(paths[stage], sep="\t", dtype=str, keep_default_na=False) for stage in STAGES}
    speakers = list(paths.get("speakers") or [name])
    if len(speakers) == 1 and not any("speaker" in df.columns for df in dfs.values()):
        return {speakers[0]: dfs}
    for df in dfs.values():
        if "speaker" in df.columns:
            speakers += [s for s in dict.fromkeys(df["speaker"]) if s not in speakers]
    return {spk: {stage: (df[df["speaker"] == spk].drop(columns="speaker").reset_index(drop=True) if "speaker" in df.columns
                          else df.iloc[:0])
                  for stage, df in dfs.items()}
            for spk in speakers}


def run(tables: dict[str, dict], out_tsv: str | Path, log_file=None) -> Path:
    """Write the summary.

    Args:
        tables: ``{shard: {stage: per-clip outcome TSV}}`` for the stages of :data:`STAGES`,
            optionally with ``"index": the dataset's index.tsv`` (then the table has the column
            ``clips_word_alignment_rejected``) and ``"speakers": the shard's speakers`` (default:
            the shard's name, and the ``speaker`` column of its tables); see :func:`layout_tables`.
        out_tsv: the summary TSV (written atomically).

    Raises:
        FileNotFoundError: a table (or the given index) is missing.
    """
    log = get_logger("summary", log_file)
    rows = []
    rejected_by_index: dict[Path, dict[str, set[str]]] = {}  # index -> speaker -> clip ids
    for name, paths in tables.items():
        rejected_of = None
        if paths.get("index") is not None:
            index = Path(paths["index"])
            if index not in rejected_by_index:
                # a2v: once per index, not once per speaker (VoxCeleb2: 6,000 speakers, 1 M clips)
                rejected_by_index[index] = {}
                for r in read_index(index):
                    if alignment_rejected(r):
                        rejected_by_index[index].setdefault(r.speaker, set()).add(r.clip_id)
            rejected_of = rejected_by_index[index]
        for speaker, dfs in _speaker_tables(name, paths).items():
            # clip ids whose word alignment ingest did not use
            rejected = None if rejected_of is None else rejected_of.get(speaker, set())
            frames_in = None  # the frames of the clips the previous stage passed on
            for stage in STAGES:
                df = dfs[stage]
                row = stage_row(stage, speaker, df, frames_in or 0)
                if rejected is not None:
                    row = {**{k: v for k, v in row.items() if not k.startswith("skipped_")},
                           "clips_word_alignment_rejected": int(df["clip_id"].isin(rejected).sum()) if len(df) else 0,
                           **{k: v for k, v in row.items() if k.startswith("skipped_")}}
                if frames_in is None:  # extract cannot count the frames of clips it cannot read
                    row["frames_in"] = row["frames_kept"]
                rows.append(row)
                frames_in = row["frames_kept"]
                log.info("%s %s: %d clips in, %d ok, %d skipped; %d of %d frames kept", stage, speaker,
                         row["clips_in"], row["clips_ok"], row["clips_skipped"], row["frames_kept"], row["frames_in"])
    table = pd.DataFrame(rows)
    totals = table.groupby("stage", sort=False).sum(numeric_only=True).reset_index()
    totals.insert(1, "speaker", "all")
    table = pd.concat([table, totals], ignore_index=True)
    skip_cols = sorted(c for c in table.columns if c.startswith("skipped_"))
    table[skip_cols] = table[skip_cols].fillna(0).astype(int)
    return write_table(table, out_tsv)
