"""Stage 6b, the metric networks ("judges"): the dataset's LipNet lip-reader (WER,
:mod:`a2v.training.lipreader`) and SyncNet (LSE-C/D, :mod:`a2v.training.syncnet`), trained on
every clip of the dataset split that is not a test clip.

The dataset split (``results/<dataset>/lipreader_split.tsv``) comes from the ``select`` stage run
with the top-level ``select`` settings — the same draw every experiment without its own
``select`` makes — so the judges never see those experiments' test clips; ``evaluate`` checks
this clip by clip.
"""

from __future__ import annotations

from pathlib import Path

from a2v.device import resolve_device
from a2v.stages.common import get_logger
from a2v.stages.select import TEST_SPLITS, read_split
from a2v.training.lipreader import train_lipreader
from a2v.training.data import resolve_clips
from a2v.training.syncnet import train_syncnet

JUDGES = {"lipreader": train_lipreader, "syncnet": train_syncnet}


def run(config: dict, judge: str, split: str | Path, shards: list[str | Path], out_dir: str | Path, device: str = "auto", log_file=None) -> Path:
    """Train ``judge`` (``"lipreader"`` or ``"syncnet"``) on the split's non-test clips. Returns its ``checkpoint.pt``.

    Raises:
        ValueError: unknown judge, no non-test clip in the split, or a bad config section.
    """
    if judge not in JUDGES:
        raise ValueError(f"unknown judge {judge!r}; known: {sorted(JUDGES)}")
    log = get_logger(judge, log_file)
    table = read_split(split)
    train = table[~table["split"].isin(TEST_SPLITS)]
    if train.empty:
        raise ValueError(f"{split}: no clip outside the test set to train the {judge} on")
    clips = resolve_clips(shards, [(row.speaker, row.clip_id) for row in train.itertuples(index=False)])
    dev = resolve_device(device)
    log.info("%s on %s: %d clips (split %s, %d test clips held out)", judge, dev, len(clips), split, int((table["split"] == "test").sum()))
    return JUDGES[judge](config.get(judge), clips, out_dir, dev, log)
