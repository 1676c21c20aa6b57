# Helpers shared by the rules: paths, the config files to pass on, experiment lookups (through
# a2v's own a2v.config.experiment), rerun triggers.

import json
import shlex
import sys
from pathlib import Path

from a2v.config import experiment  # an experiment with its defaults merged: the one definition
from a2v.datasets.registry import lipreader_reason  # whether a lip-reader judges a corpus
from a2v.datasets.source import speaker_shards  # the preprocessing units (shards) of datasets.<name>

RESULTS = config.get("results_dir", "results")
RESOURCES = config.get("resources_dir", "resources")  # downloads and unpacked corpora
PY = shlex.quote(sys.executable)
# Every a2v call gets the config files Snakemake merged, in Snakemake's order: the Snakefile's
# configfile first, then each --configfile (later files override earlier ones).
_CLI_CONFIGFILES = [str(f) for f in (workflow.overwrite_configfiles or [])]
_CONFIGFILES = [str(f) for f in workflow.configfiles if str(f) not in _CLI_CONFIGFILES] + _CLI_CONFIGFILES
CONFIG_ARGS = " ".join(f"-c {shlex.quote(f)}" for f in _CONFIGFILES)
A2V = f"{PY} -m a2v"
# `a2v train` under torchrun when the config asks for data-parallel processes (a2v.training.distributed)
TRAIN_PROCESSES = int(config.get("distributed", {}).get("processes", 1))
A2V_TRAIN = (f"{PY} -m torch.distributed.run --standalone --nproc_per_node {TRAIN_PROCESSES} -m a2v"
             if TRAIN_PROCESSES > 1 else A2V)


# a2v: the preprocessing rules' {speaker} wildcard is a *shard* of the dataset
# (a2v.datasets.source.speaker_shards): the speaker id when datasets.<name>.speakers_per_shard is 1
# (the default), else a group's name "<first>__<last>". It keeps the name `speaker`: renamed, the
# extract/align/features shell commands would change, and Snakemake's code rerun trigger would
# redo every existing per-speaker shard (GRID's) for nothing.
wildcard_constraints:
    dataset="[A-Za-z0-9_]+",
    speaker="[A-Za-z0-9_]+",
    exp="[A-Za-z0-9_]+",
    phase=r"\d+",
    judge="lipreader|syncnet",
    network="[A-Za-z0-9_]+",


def exp_dataset(exp):
    return experiment(config, exp)["dataset"]


def exp_phases(exp):
    return experiment(config, exp)["phases"]


# Rerun triggers. Every rule whose a2v stage reads a config section gets that section's JSON as
# `params.settings`: Snakemake records params with the outputs and reruns a job whose params
# changed (its "params" rerun trigger). Sections are per dataset / per experiment where the rule
# is, so that editing one dataset or experiment does not rerun another's jobs.


def _json(node):
    return json.dumps(node, sort_keys=True, default=str)


def settings_of(*keys, only=None):
    """A params function: the JSON of the config section at ``keys``, e.g.
    settings_of("preprocess"); a key like "{dataset}" is filled from the job's wildcards
    (settings_of("datasets", "{dataset}")); ``only`` keeps just those keys of the section."""

    def inner(wildcards):
        fill = dict(wildcards.items())
        node = config
        for k in keys:
            node = node.get(k.format(**fill), {}) if isinstance(node, dict) else {}
        if only is not None:
            node = {k: node[k] for k in only if k in node}
        return _json(node)

    return inner


def exp_settings_of(*keys):
    """A params function: the JSON of these keys of the experiment as a2v.config.experiment
    merges it, e.g. exp_settings_of("select"): the top-level select under the experiment's own."""

    def inner(wildcards):
        e = experiment(config, wildcards.exp)
        return _json({k: e[k] for k in keys})

    return inner


# The experiment's model type, model, training and phases as they will run (defaults merged).
exp_settings = exp_settings_of("model_type", "model", "training", "phases")


def shard_paths(dataset, kind):
    """The feature shards of a dataset: ``kind`` "speakers" (its training speakers'), "unseen" (its
    unseen_speakers'; never mixed with training speakers) or "all" (a2v.datasets.source.speaker_shards)."""
    return [f"{RESULTS}/features/{dataset}/{name}.h5" for name in speaker_shards(config["datasets"][dataset], kind)]


def dataset_shards(dataset):
    return shard_paths(dataset, "speakers")


def exp_shards(wildcards):
    return dataset_shards(exp_dataset(wildcards.exp))


def exp_unseen_shards(wildcards):
    """The shards of the experiment dataset's unseen_speakers: its second test set (test_unseen)."""
    return shard_paths(exp_dataset(wildcards.exp), "unseen")


def shard_list(kind):
    """Input function: the file listing the experiment dataset's shards, ``speakers`` (training
    speakers) or ``all`` (+ unseen speakers), written by the shard_list rule. Rules pass it as
    ``--shards @FILE`` (a2v's argparse reads the paths from it): a VoxCeleb2-sized list (6000 paths)
    would not fit in one shell command (Linux: 128 KiB per argument; benchmarks/dag_scale.py)."""

    def files(wildcards):
        dataset = exp_dataset(wildcards.exp) if hasattr(wildcards, "exp") else wildcards.dataset
        return f"{RESULTS}/{dataset}/shards_{kind}.txt"

    return files


def exp_test_shards(wildcards):
    """Every shard a test clip can come from: the speakers' and the unseen speakers'."""
    return exp_shards(wildcards) + exp_unseen_shards(wildcards)


def exp_judge(judge):
    """Input function: the experiment dataset's ``judge`` (lipreader / syncnet) — configured weights,
    or the pipeline's own; [] for a lip-reader on a corpus outside its vocabulary (WER is NA)."""

    def inner(wildcards):
        dataset = exp_dataset(wildcards.exp)
        if judge == "lipreader" and lipreader_reason(dataset, config["datasets"][dataset]):
            return []
        weights = config.get(judge, {}).get("weights")
        return weights if weights else f"{RESULTS}/{judge}/{dataset}/checkpoint.pt"

    return inner


def judge_args(wildcards, input):
    """Params function: the judges' command-line options, for the judges the job has as input."""
    return " ".join(f"--{j} {shlex.quote(str(input[j]))}" for j in ("lipreader", "syncnet") if input.get(j))


def phase_checkpoints(exp):
    return [f"{RESULTS}/{exp}/phase{k}/checkpoint.pt" for k in range(1, len(exp_phases(exp)) + 1)]


def final_checkpoint(exp):
    return phase_checkpoints(exp)[-1]


def exp_pretrained(wildcards):
    """Input function: {name: checkpoint} of the networks the experiment's recipe pretrains and its
    phases use (a2v.recipes: Recipe.needed_pretrained), each made by the pretrain rule."""
    from a2v.recipes import make_recipe  # imports torch: only when an experiment is resolved

    exp = experiment(config, wildcards.exp)
    recipe = make_recipe(exp["model_type"], exp["model"], exp["training"], exp["phases"], exp["pretrained"])
    return {n: f"{RESULTS}/{wildcards.exp}/pretrained/{n}/checkpoint.pt" for n in recipe.needed_pretrained()}


def pretrained_args(wildcards, input):
    """Params function: ``--pretrained NAME=PATH …`` for the pretrained checkpoints among the job's input."""
    names = list(exp_pretrained(wildcards))
    return ("--pretrained " + " ".join(shlex.quote(f"{n}={input[n]}") for n in names)) if names else ""


def previous_checkpoint(wildcards):
    """[] for phase 1; else the previous phase's checkpoint (the phase starts from it)."""
    k = int(wildcards.phase)
    return [f"{RESULTS}/{wildcards.exp}/phase{k - 1}/checkpoint.pt"] if k > 1 else []


def stage_tables(wildcards):
    spk = list(speaker_shards(config["datasets"][wildcards.dataset]))  # shard names
    return {
        "index": f"{RESULTS}/{wildcards.dataset}/index.tsv",  # its word-alignment outcome per clip
        "extract": expand(f"{RESULTS}/interim/{{dataset}}/{{speaker}}/extract.tsv", dataset=wildcards.dataset, speaker=spk),
        "align": expand(f"{RESULTS}/interim/{{dataset}}/{{speaker}}/align.tsv", dataset=wildcards.dataset, speaker=spk),
        "features": expand(f"{RESULTS}/features/{{dataset}}/{{speaker}}.tsv", dataset=wildcards.dataset, speaker=spk),
    }


def comparison_inputs(kind):
    """Input function of model_comparison: each compared experiment's ``kind`` output."""
    exps = config.get("comparison", {}).get("experiments", [])
    paths = {"metrics": "metrics.csv", "per_clip": "metrics/per_clip.csv", "videos": "videos/videos.tsv"}
    return [f"{RESULTS}/{e}/{paths[kind]}" for e in exps]


def comparison_dataset() -> str:
    """The one dataset of comparison.experiments."""
    exps = config.get("comparison", {}).get("experiments", [])
    datasets = {exp_dataset(e) for e in exps}
    if len(datasets) != 1:
        raise ValueError(f"comparison.experiments must share one dataset, got {sorted(datasets)}")
    return datasets.pop()


def comparison_shard_list(wildcards):
    """The shard list (all speakers') of the comparison's dataset."""
    return f"{RESULTS}/{comparison_dataset()}/shards_all.txt"


def comparison_shards(wildcards):
    """The test clips' shards (the first compared experiment's; all share its dataset)."""
    return shard_paths(comparison_dataset(), "all")
