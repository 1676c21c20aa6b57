"""The workflow on a real SLURM cluster through profiles/slurm (snakemake-executor-plugin-slurm).

CI starts a one-node cluster on its machine (.ci/slurm_up.sh: slurmctld, slurmd, slurmdbd on MariaDB,
munge) and sets A2V_CI=1, which makes this test required; elsewhere it skips when no cluster answers.

A tiny speech-driven GAN experiment (the fastest recipe to train; 5 real s1 clips of the embedded
sample, 64² frames, two reconstruction phases) runs to its phase-2 checkpoint twice: locally, and with the profile (its partition and GPU counts overridden for
the CPU-only test cluster). In the SLURM run, phase 2's job is cancelled with scancel once its
last.pt exists; the profile's `retries` resubmits it and `a2v train` resumes from last.pt.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from a2v.training.checkpoint import load_checkpoint
from conftest import SDGAN_HALF

CLIPS = ["bgbn8n", "lgbm3s", "pwbd8p", "sbit3s", "swbc3a"]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
TRAIN2 = "rule_train_wildcards_sdgan_grid_2"  # the plugin's --comment: rule and wildcard values


def _cluster_up() -> bool:
    if not shutil.which("sbatch") or not shutil.which("sacct"):
        return False
    out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    return out.returncode == 0 and any(s in out.stdout for s in ("idle", "mix", "alloc"))


@pytest.fixture(scope="module")
def cluster():
    if not _cluster_up():
        if os.environ.get("A2V_CI"):
            pytest.fail("A2V_CI is set but no SLURM cluster answers (.ci/slurm_up.sh should have started one)")
        pytest.skip("no SLURM cluster here (sinfo shows no idle node; CI starts one with .ci/slurm_up.sh)")


def _config(tmp: Path, grid_sample: Path, name: str) -> Path:
    corpus = tmp / "corpus"
    if not corpus.exists():
        for sub in ("s1", "alignments/s1"):
            (corpus / sub).mkdir(parents=True)
        for c in CLIPS:
            shutil.copy(grid_sample / "s1" / f"{c}.mpg", corpus / "s1")
            shutil.copy(grid_sample / "alignments" / "s1" / f"{c}.align", corpus / "alignments" / "s1")
    cfg = tmp / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump({
        "results_dir": str(tmp / name / "results"), "resources_dir": str(tmp / name / "resources"),
        "datasets": {"grid": {"source": str(corpus), "speakers": ["s1"], "unseen_speakers": []}},
        "preprocess": {"crop_size": 64, "min_frames": 25, "content_encoder": None, "content_mel": False},
        "select": {"n_test": 1, "n_train": None, "balance": {"enabled": False}},
        "model_defaults": {"sdgan": {
            "model": SDGAN_HALF,
            "training": {"batch_size": 2, "sequence_length": 8, "frame_samples": 2, "checkpoint_every": 5, "log_every": 5},
            "phases": [{"name": "reconstruction", "steps": 3, "discriminators": [], "losses": {"l1_lower": 1.0}},
                       {"name": "long", "steps": 120, "discriminators": [], "losses": {"l1_lower": 1.0}}]}},
        "experiments": {"sdgan_grid": {"model": {"image_size": 64, "net_size": 32}}},
    }))
    return cfg


def _profile(tmp: Path, repo: Path) -> Path:
    """profiles/slurm/config.yaml as a user would edit it for a CPU-only cluster: partition `cpu`,
    no GPUs, 2 CPUs a job."""
    prof = yaml.safe_load((repo / "profiles" / "slurm" / "config.yaml").read_text())
    prof["default-resources"] = {**prof["default-resources"], "slurm_partition": "cpu", "mem_mb": 2000, "runtime": 30}
    prof["set-resources"] = {rule: {"gpu": 0, "cpus_per_task": 2} for rule in ("train", "pretrain", "train_judge", "generate_test")}
    prof["latency-wait"] = 5
    prof["slurm-init-seconds-before-status-checks"] = 5  # a test's jobs last seconds, not hours
    prof["slurm-logdir"] = str(tmp / "slurm_logs")
    out = tmp / "profile"
    out.mkdir(exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(prof))
    return out


def _sacct(since: str) -> pd.DataFrame:
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-S", since, "--format=JobIDRaw,Comment,State"], capture_output=True,
                         text=True, check=True).stdout
    rows = [line.split("|") for line in out.splitlines() if line.strip()]
    return pd.DataFrame(rows, columns=["job_id", "comment", "state"])


def test_tiny_experiment_on_slurm_equals_local_and_resumes_after_scancel(cluster, repo, tmp_path, grid_sample):
    target = "results/sdgan_grid/phase2/checkpoint.pt"
    local_cfg = _config(tmp_path, grid_sample, "local")
    slurm_cfg = _config(tmp_path, grid_sample, "slurm")
    # a2v: the local run goes on while the SLURM run waits on the scheduler (test time, not behaviour)
    local = subprocess.Popen([*SNAKEMAKE, str(tmp_path / "local" / target), "--configfile", str(local_cfg), "--cores", "2",
                              "--nolock"], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    since = time.strftime("%Y-%m-%dT%H:%M:%S")
    log = open(tmp_path / "snakemake_slurm.log", "w")
    proc = subprocess.Popen([*SNAKEMAKE, str(tmp_path / "slurm" / target), "--configfile", str(slurm_cfg), "--profile",
                             str(_profile(tmp_path, repo)), "--nolock"], cwd=repo, stdout=log, stderr=subprocess.STDOUT)
    last = tmp_path / "slurm" / "results" / "sdgan_grid" / "phase2" / "last.pt"
    cancelled = None
    try:
        deadline = time.monotonic() + 900
        while cancelled is None and proc.poll() is None and time.monotonic() < deadline:
            if last.exists():
                queue = subprocess.run(["squeue", "-h", "-o", "%i|%k"], capture_output=True, text=True).stdout
                for line in queue.splitlines():
                    job_id, comment = line.split("|", 1)
                    if comment == TRAIN2:
                        subprocess.run(["scancel", job_id], check=True)
                        cancelled = job_id
            time.sleep(0.2)
        rc = proc.wait(timeout=max(1, deadline - time.monotonic()))
        local_out = local.communicate(timeout=max(1, deadline - time.monotonic()))[0]
    finally:
        for p in (proc, local):
            if p.poll() is None:
                p.kill()
        log.close()
    assert local.returncode == 0, local_out[-4000:]
    text = (tmp_path / "snakemake_slurm.log").read_text()
    assert rc == 0, text[-4000:]
    assert cancelled is not None, "phase 2 finished before it could be cancelled"

    jobs = _sacct(since)
    ours = jobs[jobs.comment.str.startswith("rule_")]
    print("sacct (job id | rule and wildcards | state):")
    print(ours.to_string(index=False))
    rules = set()  # "rule_<rule>_wildcards_<values>", or "rule_<group>_<rules…>" for a group job
    for c in ours.comment:
        name = c.split("_wildcards")[0].removeprefix("rule_")
        rules |= set(name.removeprefix("preprocess_").split("_")) if name.startswith("preprocess_") else {name}
    assert {"ingest", "extract", "align", "features", "select", "train"} <= rules
    train2 = ours[ours.comment == TRAIN2]
    assert train2.state.str.startswith("CANCELLED").sum() == 1 and (train2.state == "COMPLETED").sum() == 1, train2
    assert cancelled in set(train2.job_id)
    assert (ours[~ours.job_id.isin([cancelled])].state == "COMPLETED").all()
    train_log = (tmp_path / "slurm" / "results" / "logs" / "train" / "sdgan_grid_phase2.log").read_text()
    assert "resuming from" in train_log and "last.pt at step" in train_log

    for rel in ("results/sdgan_grid/split.tsv",):
        assert (tmp_path / "slurm" / rel).read_text() == (tmp_path / "local" / rel).read_text()
    a = load_checkpoint(tmp_path / "local" / target)["networks"]
    b = load_checkpoint(tmp_path / "slurm" / target)["networks"]
    diff = max(float((a[n][k].float() - b[n][k].float()).abs().max()) for n in a for k in a[n] if a[n][k].is_floating_point())
    print(f"phase-2 weights, SLURM run (cancelled, resubmitted, resumed) vs local run: max |Δ| {diff:.2e}")
    assert diff < 1e-4
    norms = [load_checkpoint(tmp_path / run / target)["state"]["audio_norm"] for run in ("local", "slurm")]
    assert all(torch.equal(norms[0][k], norms[1][k]) for k in ("mean", "std"))
