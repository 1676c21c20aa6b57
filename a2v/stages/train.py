"""Stage 6, train: one curriculum phase of an experiment on the split's training clips, by the
experiment's recipe (``model_type``, :mod:`a2v.recipes`; :func:`a2v.training.loop.train_phase`).

The checkpoint stores the experiment's model/training/phases settings and the ``preprocess``
section (audio feature parameters, fps, crop size), so that ``a2v generate`` computes features
for new audio exactly as the training shards did.
"""

from __future__ import annotations

from pathlib import Path

from a2v.config import experiment
from a2v.device import resolve_device
from a2v.stages.common import get_logger
from a2v.stages.select import read_split
from a2v.training.distributed import close_world, init_world
from a2v.training.loop import train_phase


def run(config: dict, exp_name: str, phase: int, split: str | Path, shards: list[str | Path], out_dir: str | Path,
        init: str | Path | None = None, device: str = "auto", log_file=None, pretrained: dict[str, str] | None = None) -> Path:
    """Train phase ``phase`` (1-based) of ``exp_name``. Returns the phase's ``checkpoint.pt``.

    ``pretrained``: the checkpoints of the networks the recipe pretrains (``a2v pretrain``).

    Started by ``torchrun`` with several processes (the ``train`` rule does so when
    ``distributed.processes`` > 1), the phase trains data-parallel (:mod:`a2v.training.distributed`).

    Raises:
        ValueError: phase out of range, no training clip in the split, or a pretrained checkpoint missing.
    """
    log = get_logger("train", log_file)
    exp = experiment(config, exp_name)
    if not 1 <= phase <= len(exp["phases"]):
        raise ValueError(f"experiment {exp_name!r} has {len(exp['phases'])} phases; phase {phase} asked for")
    dev = resolve_device(device)
    train = read_split(split).query("split == 'train'")
    if train.empty:
        raise ValueError(f"{split}: no training clip")
    clips = [(row.speaker, row.clip_id) for row in train.itertuples(index=False)]
    train_config = {
        "model_type": exp["model_type"], "model": exp["model"], "training": exp["training"], "phases": exp["phases"],
        "pretrained": exp["pretrained"],
        "preprocess": {k: config["preprocess"][k] for k in ("fps", "sample_rate", "crop_size", "audio", "content_encoder", "content_pad_to_30s")
                       if k in config["preprocess"]},
        "experiment": exp_name, "dataset": exp["dataset"],
    }
    log.info("experiment %s (%s) phase %d/%d (%s) on %s: %d training clips", exp_name, exp["model_type"], phase, len(exp["phases"]),
             exp["phases"][phase - 1]["name"], dev, len(clips))
    world, dev = init_world(dev)
    try:
        return train_phase(train_config, shards, clips, phase - 1, out_dir, init, dev, log, pretrained, world)
    finally:
        close_world(world)
