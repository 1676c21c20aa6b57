"""Stage 6a, pretrain: a network an experiment's losses use, trained before phase 1 by its own rule
(e.g. OneShotA2V's sync discriminator, §4.1.5, and the eye-landmark regressor of its blink loss).

The recipe names its pretrained networks and their trainers
(:attr:`a2v.recipes.base.Recipe.pretrained_networks`); the experiment's ``pretrained.<name>``
section configures each. Trained on the experiment's training clips only (split ``train``), so
no test clip is seen. Output: ``results/<exp>/pretrained/<name>/checkpoint.pt`` (resumable).
"""

from __future__ import annotations

from pathlib import Path

from a2v.config import experiment
from a2v.device import resolve_device
from a2v.recipes import make_recipe
from a2v.stages.common import get_logger
from a2v.stages.select import read_split
from a2v.training.data import resolve_clips


def run(config: dict, exp_name: str, network: str, split: str | Path, shards: list[str | Path], out_dir: str | Path,
        device: str = "auto", log_file=None) -> Path:
    """Train pretrained network ``network`` of experiment ``exp_name``. Returns its ``checkpoint.pt``.

    Raises:
        ValueError: a network the experiment's recipe does not pretrain, no training clip, bad settings.
    """
    log = get_logger("pretrain", log_file)
    exp = experiment(config, exp_name)
    recipe = make_recipe(exp["model_type"], exp["model"], exp["training"], exp["phases"], exp["pretrained"])
    trainer = recipe.pretrained_trainer(network)
    train = read_split(split).query("split == 'train'")
    if train.empty:
        raise ValueError(f"{split}: no training clip to pretrain {network} on")
    clips = resolve_clips(shards, [(row.speaker, row.clip_id) for row in train.itertuples(index=False)])
    dev = resolve_device(device)
    log.info("experiment %s (%s): pretraining %s on %s, %d training clips", exp_name, exp["model_type"], network, dev, len(clips))
    return trainer(recipe.pretrained.get(network), clips, out_dir, dev, log)
