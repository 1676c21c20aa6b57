"""The workflow's rules, without running the pipeline: every log takes both output streams, and
every rule reruns when (and only when) a config section its a2v stage reads changes.

The rerun triggers are Snakemake's own: each rule has ``params.settings`` (the JSON of the config
it reads, workflow/rules/common.smk), which Snakemake records with the outputs. To have records
without computing anything, the outputs of a dry DAG are created empty and recorded by
``snakemake --touch``; ``snakemake --summary`` then says, per output file, "params changed" or not.
One small real run (download, ingest and extract of one clip) checks the same on real jobs.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, make_corpus

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
RULE_FILES = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
LOGGED_RULES = {"download", "ingest", "extract", "align", "features", "preprocess_summary", "select", "select_dataset",
                "pretrain", "train", "train_judge", "generate_test", "evaluate", "report", "model_comparison", "shard_list"}
NO_SETTINGS = {"generate_test"}  # reads no config section: what it needs comes with the checkpoint


def _snakemake(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([*SNAKEMAKE, *args], cwd=REPO, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def _rules() -> dict[str, dict[str, str]]:
    """{rule: {directive: its source text}} of the Snakefile and workflow/rules/*.smk."""
    rules = {}
    for path in RULE_FILES:
        blocks = re.split(r"^(?:local)?(?:rule|checkpoint) (\w+):\n", path.read_text(), flags=re.M)
        for name, body in zip(blocks[1::2], blocks[2::2]):
            body = re.split(r"^\S", body, maxsplit=1, flags=re.M)[0]  # up to the next top-level line
            parts = re.split(r"^    (\w+):", body, flags=re.M)
            rules[name] = {d: text for d, text in zip(parts[1::2], parts[2::2])}
    return rules


def _shell(rule: dict[str, str]) -> str:
    """The rule's shell command: its adjacent string literals, concatenated."""
    return ast.literal_eval("(" + rule["shell"].strip() + ")")


def test_every_log_takes_both_streams():
    rules = _rules()
    logged = {name for name, r in rules.items() if "log" in r}
    assert logged == LOGGED_RULES
    for name in sorted(logged):
        if "script" in rules[name]:  # a Python script (shard_list), no a2v process: it writes its log itself
            script = REPO / "workflow" / "rules" / ast.literal_eval(rules[name]["script"].strip())
            assert "snakemake.log[0]" in script.read_text(), name
            continue
        cmd = _shell(rules[name])
        assert cmd.endswith(" > {log} 2>&1") and cmd.count("{log}") == 1, f"rule {name}: {cmd!r}"


def test_every_rule_calling_a2v_has_a_settings_trigger():
    for name, r in _rules().items():
        params = r.get("params", "")
        if "args=CONFIG_ARGS" not in params:
            continue
        if name in NO_SETTINGS:
            assert "settings=" not in params and "no settings:" in params, name
        else:
            assert re.search(r"^\s+settings=", params, flags=re.M), f"rule {name} has no params.settings"


# --- rerun triggers on a recorded (touched) DAG -------------------------------------------------

BASE = ["config/demo.yaml"]  # over the Snakefile's config/config.yaml
TARGETS = ["man_grid/report.html", "man_keypoint_grid/report.html", "grid/preprocess_summary.tsv"]


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Two experiments' outputs and their data set's, empty but recorded as made by the workflow.

    Yields a function: config edit -> {"rule:job"} of the jobs whose params changed (a job is
    named by its log file, e.g. "extract:grid_s1", "train:man_grid_phase2").
    """
    root = tmp_path_factory.mktemp("recorded")
    override = root / "override.yaml"  # rewritten per edit: its path is part of every rule's params
    paths = {"results_dir": str(root / "results"), "resources_dir": str(root / "resources")}

    def args(*extra):
        return [*extra, *(f"{root}/results/{t}" for t in TARGETS), "--nolock", "--configfile", *BASE, str(override)]

    def summary() -> list[list[str]]:
        out = _snakemake(*args("--summary")).stdout.splitlines()
        head = out.index(next(line for line in out if line.startswith("output_file\t")))
        return [line.split("\t") for line in out[head + 1:] if "\t" in line]

    override.write_text(yaml.safe_dump(paths))
    outputs = [row[0] for row in summary()]
    assert len(outputs) > 30 and all(Path(f).is_relative_to(root) for f in outputs)
    for f in outputs:
        Path(f).parent.mkdir(parents=True, exist_ok=True)
        Path(f).touch()
    _snakemake(*args("--touch", "--forceall", "--cores", "1"))
    try:
        def changed(edit: dict) -> set[str]:
            override.write_text(yaml.safe_dump(_merge(paths, edit)))
            rows = summary()
            assert {r[4] for r in rows} <= {"ok", "params changed"}, rows
            return {f"{r[2]}:{Path(r[3]).stem}" for r in rows if r[4] == "params changed"}

        yield changed
    finally:
        override.write_text(yaml.safe_dump(paths))
        _snakemake(*args("--cleanup-metadata", *outputs), check=False)  # leave no records in the repo's .snakemake


def _jobs(rule: str, *names: str) -> set[str]:
    return {f"{rule}:{n}" for n in names}


SPEAKERS = ("grid_s1", "grid_s2", "grid_s31")  # demo: s1 plus the unseen s2 and s31
EXPS = ("man_grid", "man_keypoint_grid")
EDITS = {
    "nothing": ({}, set()),
    "same value": ({"experiments": {"man_grid": {"model": {"image_size": 64}}}}, set()),
    "preprocess": ({"preprocess": {"min_frames": 26}},
                   _jobs("extract", *SPEAKERS) | _jobs("align", *SPEAKERS) | _jobs("features", *SPEAKERS)),
    "dataset adapter": ({"datasets": {"grid": {"adapter": "lombard_grid"}}}, {"ingest:grid"}),
    "dataset sha256": ({"datasets": {"grid": {"sha256": {"s1.tar": "0" * 64}}}}, {"download:grid", "ingest:grid"}),
    "select": ({"select": {"seed": 1}}, _jobs("select", *EXPS) | {"select_dataset:grid"}),
    "one experiment's select": ({"experiments": {"man_grid": {"select": {"seed": 1}}}}, {"select:man_grid"}),
    "evaluate": ({"evaluate": {"blink_min_frames": 3}}, _jobs("evaluate", *EXPS) | _jobs("report", *EXPS)),
    "one experiment's evaluate": ({"experiments": {"man_keypoint_grid": {"evaluate": {"blink_min_frames": 3}}}},
                                  {"evaluate:man_keypoint_grid", "report:man_keypoint_grid"}),
    "one experiment's model": ({"experiments": {"man_keypoint_grid": {"model": {"base_channels": 8}}}},
                               _jobs("train", "man_keypoint_grid_phase1", "man_keypoint_grid_phase2")),
    "model defaults": ({"model_defaults": {"man": {"training": {"log_every": 5}}}},
                       _jobs("train", *(f"{e}_phase{k}" for e in EXPS for k in (1, 2)))),
    "lipreader": ({"lipreader": {"training": {"steps": 10}}}, {"train_judge:lipreader_grid"}),
    "syncnet": ({"syncnet": {"training": {"steps": 10}}}, {"train_judge:syncnet_grid"}),
}


@pytest.mark.parametrize("edit", EDITS)
def test_settings_rerun_exactly_the_jobs_reading_them(recorded, edit):
    change, expected = EDITS[edit]
    assert recorded(change) == expected


# --- the same on real jobs -----------------------------------------------------------------------


def test_real_extract_reruns_on_preprocess_only(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", {"s1": ["bgbn8n"]})
    cfg = tmp_path / "config.yaml"
    base = {"results_dir": str(tmp_path / "results"), "resources_dir": str(tmp_path / "resources"),
            "datasets": {"grid": {"source": str(corpus), "speakers": ["s1"], "unseen_speakers": []}}, "preprocess": {"crop_size": 64, "min_frames": 25}}
    target = str(tmp_path / "results" / "interim" / "grid" / "s1" / "extract.h5")
    args = [target, "--nolock", "--configfile", str(cfg)]
    cfg.write_text(yaml.safe_dump(base))
    try:
        _snakemake(*args, "--cores", "1")
        log = (tmp_path / "results" / "logs" / "extract" / "grid_s1.log").read_text()
        assert "speaker" in log or "extract" in log, log  # the stage's logging (stderr) went to the log

        def dry_run(edit: dict) -> str:
            cfg.write_text(yaml.safe_dump(_merge(base, edit)))
            proc = _snakemake("-n", *args)
            return proc.stdout + proc.stderr

        assert "Nothing to be done" in dry_run({})
        assert "Nothing to be done" in dry_run({"experiments": {"man_keypoint_grid": {"model": {"base_channels": 8}}}})
        out = dry_run({"preprocess": {"min_frames": 30}})
        jobs = re.findall(r"^(?:local)?rule (\w+):", out, flags=re.M)
        assert jobs == ["extract"], out
        assert "Params have changed since last execution" in out and '"min_frames": 30' in out
    finally:
        cfg.write_text(yaml.safe_dump(base))
        outputs = [target, target.replace(".h5", ".tsv"), str(tmp_path / "results" / "grid" / "index.tsv"),
                   str(tmp_path / "resources" / "grid" / "manifest.tsv")]
        _snakemake("--cleanup-metadata", *outputs, "--nolock", "--configfile", str(cfg), check=False)


def test_speakers_per_shard_makes_one_job_per_group(tmp_path):
    """``datasets.<name>.speakers_per_shard``: one extract → align → features chain per group of
    speakers (the sorted speakers, then the sorted unseen speakers, cut into groups), named
    ``<first>__<last>``, and the shard lists list the groups' shards (tests/test_preprocess.py runs
    the stages on such a shard)."""
    results = tmp_path / "results"
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({
        "results_dir": str(results), "resources_dir": str(tmp_path / "resources"),
        "datasets": {"grid": {"source": str(tmp_path / "corpus"), "speakers": ["s4", "s1", "s3"],
                              "unseen_speakers": ["s31", "s2"], "speakers_per_shard": 2}}}))
    out = _snakemake("-n", "-p", f"{results}/grid/shards_all.txt", f"{results}/grid/preprocess_summary.tsv",
                     "--nolock", "--configfile", str(cfg)).stdout
    counts = dict(re.findall(r"^(extract|align|features)\s+(\d+)$", out, flags=re.M))
    assert counts == {"extract": "3", "align": "3", "features": "3"}, out
    for shard in ("s1__s3", "s4", "s2__s31"):  # s4 alone: a group of one is named by its speaker
        assert f"--speaker {shard} " in out and f"features/grid/{shard}.h5" in out, shard
        assert f"logs/extract/grid_{shard}.log" in out
