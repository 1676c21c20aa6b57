# Helpers shared by the rules: paths, the config files to pass on, experiment lookups.

import json
import shlex
import sys

RESULTS = config.get("results_dir", "results")
RESOURCES = config.get("resources_dir", "resources")  # downloads and unpacked corpora
PY = shlex.quote(sys.executable)
# Every a2v call gets the config files Snakemake merged, in Snakemake's order: the Snakefile's
# configfile first, then each --configfile (later files override earlier ones).
_CLI_CONFIGFILES = [str(f) for f in (workflow.overwrite_configfiles or [])]
_CONFIGFILES = [str(f) for f in workflow.configfiles if str(f) not in _CLI_CONFIGFILES] + _CLI_CONFIGFILES
CONFIG_ARGS = " ".join(f"-c {shlex.quote(f)}" for f in _CONFIGFILES)
A2V = f"{PY} -m a2v"


wildcard_constraints:
    dataset="[A-Za-z0-9_]+",
    speaker="[A-Za-z0-9_]+",
    exp="[A-Za-z0-9_]+",
    phase=r"\d+",
    judge="lipreader|syncnet",


def exp_dataset(exp):
    return config["experiments"][exp]["dataset"]


def exp_phases(exp):
    e = config["experiments"][exp]
    defaults = config.get("model_defaults", {}).get(e["model_type"], {})
    return e.get("phases", defaults.get("phases", []))


def settings_of(*keys):
    """A params function: the JSON of a config section, so that editing it reruns the job
    (Snakemake's params rerun trigger) — e.g. settings_of("lipreader")."""

    def inner(wildcards):
        node = config
        for k in keys:
            node = node.get(k, {}) if isinstance(node, dict) else {}
        return json.dumps(node, sort_keys=True)

    return inner


def exp_settings(wildcards):
    """The experiment's model, training and phases as they will run (defaults merged), as JSON."""
    e = config["experiments"][wildcards.exp]
    defaults = config.get("model_defaults", {}).get(e["model_type"], {})
    merged = {k: (defaults.get(k), e.get(k)) for k in ("model", "training", "phases")}
    return json.dumps(merged, sort_keys=True)


def dataset_shards(dataset):
    return [f"{RESULTS}/features/{dataset}/{spk}.h5" for spk in config["datasets"][dataset]["speakers"]]


def exp_shards(wildcards):
    return dataset_shards(exp_dataset(wildcards.exp))


def exp_judge(judge):
    """Input function: the experiment dataset's ``judge`` (lipreader / syncnet) — configured weights, or the pipeline's own."""

    def inner(wildcards):
        weights = config.get(judge, {}).get("weights")
        return weights if weights else f"{RESULTS}/{judge}/{exp_dataset(wildcards.exp)}/checkpoint.pt"

    return inner


def phase_checkpoints(exp):
    return [f"{RESULTS}/{exp}/phase{k}/checkpoint.pt" for k in range(1, len(exp_phases(exp)) + 1)]


def final_checkpoint(exp):
    return phase_checkpoints(exp)[-1]


def previous_checkpoint(wildcards):
    """[] for phase 1; else the previous phase's checkpoint (the phase starts from it)."""
    k = int(wildcards.phase)
    return [f"{RESULTS}/{wildcards.exp}/phase{k - 1}/checkpoint.pt"] if k > 1 else []


def dataset_speakers(dataset):
    ds = config["datasets"][dataset]
    return list(ds["speakers"]) + [s for s in ds.get("unseen_speakers", []) if s not in ds["speakers"]]


def stage_tables(wildcards):
    spk = dataset_speakers(wildcards.dataset)
    return {
        "extract": expand(f"{RESULTS}/interim/{{dataset}}/{{speaker}}/extract.tsv", dataset=wildcards.dataset, speaker=spk),
        "align": expand(f"{RESULTS}/interim/{{dataset}}/{{speaker}}/align.tsv", dataset=wildcards.dataset, speaker=spk),
        "features": expand(f"{RESULTS}/features/{{dataset}}/{{speaker}}.tsv", dataset=wildcards.dataset, speaker=spk),
    }
