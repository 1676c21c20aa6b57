"""How the workflow scales to a VoxCeleb2-sized corpus: DAG build time of ``snakemake -n``, jobs,
files per folder, command-line lengths and cluster-job grouping, on a synthetic speaker list.

    python benchmarks/dag_scale.py                      # 6000 speakers (VoxCeleb2 dev: 5,994), 50 per shard
    python benchmarks/dag_scale.py --speakers 100 1000 6000 --clips-per-speaker 150
    python benchmarks/dag_scale.py --speakers 6000 --speakers-per-shard 50 1   # grouped, then one shard per speaker

Nothing is read from a corpus: ``snakemake -n`` builds the DAG from the config's speaker list
(one extract / align / features job per shard: ``datasets.voxceleb2.speakers_per_shard`` speakers
each, a2v.datasets.source.speaker_shards; 1 is one shard per speaker). Printed per size and
grouping: seconds to build the DAG (wall, this machine), jobs by rule, the longest shell command
(Linux refuses a single argument over 128 KiB: ``bash -c`` gets the whole command as one), files
per output folder for the speaker count and clips per speaker given, and how many cluster jobs
the preprocessing makes with and without the ``preprocess`` job group (``--groups
extract=preprocess …`` and ``--group-components preprocess=N``, as profiles/slurm sets them;
``--group 0`` skips that second dry run).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ARG_MAX_ONE = 128 * 1024  # MAX_ARG_STRLEN: one argv string (bash -c "<command>")


def synthetic_config(n_speakers: int, results: Path, per_shard: int) -> dict:
    speakers = [f"id{i:05d}" for i in range(n_speakers)]
    return {
        "results_dir": str(results),
        "datasets": {"voxceleb2": {"source": str(results / "no_corpus_needed_for_a_dry_run"), "speakers": speakers[:-3],
                                   "unseen_speakers": speakers[-3:], "speakers_per_shard": per_shard}},
        "comparison": {"experiments": ["man_voxceleb2"]},
    }


def shard_count(n_speakers: int, per_shard: int) -> int:
    """Shards of the synthetic list: its speakers and its 3 unseen speakers are grouped apart."""
    return -(-(n_speakers - 3) // per_shard) + -(-3 // per_shard)


def dry_run(n_speakers: int, per_shard: int, group: int | None, workdir: Path) -> dict:
    results = workdir / f"results_{n_speakers}_{per_shard}"
    cfg = workdir / f"vox_{n_speakers}_{per_shard}.yaml"
    cfg.write_text(yaml.safe_dump(synthetic_config(n_speakers, results, per_shard)))
    cmd = [sys.executable, "-m", "snakemake", f"{results}/man_voxceleb2/metrics.csv", "-n", "-p", "--configfile", str(cfg), "--rerun-triggers", "mtime",
           "--cores", "32"]
    if group:
        cmd += ["--groups", "extract=preprocess", "align=preprocess", "features=preprocess",
                "--group-components", f"preprocess={group}"]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"snakemake -n failed for {n_speakers} speakers:\n{out.stderr[-3000:]}")
    text = out.stdout + out.stderr
    jobs = Counter()
    for m in re.finditer(r"^(\S+)\s+(\d+)$", text, re.M):
        if m.group(1) not in ("job", "total"):
            jobs[m.group(1)] = int(m.group(2))
    commands = [line for line in text.splitlines() if " -m a2v " in line]
    longest = max((len(c) for c in commands), default=0)
    return {"seconds": seconds, "jobs": dict(jobs), "total": sum(jobs.values()), "longest_command": longest}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--speakers", type=int, nargs="+", default=[6000])
    p.add_argument("--clips-per-speaker", type=int, default=150)
    p.add_argument("--speakers-per-shard", type=int, nargs="+", default=[50],
                   help="datasets.voxceleb2.speakers_per_shard of the synthetic config (1: one shard per speaker); several: each")
    p.add_argument("--group", type=int, default=50, help="shards per preprocessing cluster job (0: skip that dry run)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.speakers:
            for k in args.speakers_per_shard:
                r = dry_run(n, k, None, Path(tmp))
                shards = shard_count(n, k)
                pre = sum(r["jobs"].get(j, 0) for j in ("extract", "align", "features"))
                print(f"{n} speakers × {args.clips_per_speaker} clips ({n * args.clips_per_speaker:,} clips), "
                      f"speakers_per_shard {k}: {shards:,} shards")
                print(f"  snakemake -n: {r['seconds']:.1f} s to build the DAG, {r['total']:,} jobs "
                      f"({', '.join(f'{j} {v}' for j, v in sorted(r['jobs'].items()))})")
                ok = "fits" if r["longest_command"] < ARG_MAX_ONE else "TOO LONG for one bash -c argument"
                print(f"  longest shell command: {r['longest_command']:,} characters ({ok}; limit {ARG_MAX_ONE:,})")
                print(f"  files per folder: results/features/voxceleb2/ {2 * shards:,} (a shard + a summary per shard); "
                      f"results/interim/voxceleb2/ {shards:,} folders of 4 files; logs/ and benchmarks/ {shards:,} per stage; "
                      f"clips inside shards: up to {k * args.clips_per_speaker:,} per HDF5 file ({k} speaker{'s' * (k > 1)})")
                if args.group:
                    g = dry_run(n, k, args.group, Path(tmp))
                    print(f"  cluster jobs for preprocessing: {pre:,} ungrouped; {-(-shards // args.group):,} with "
                          f"--group-components preprocess={args.group} (DAG {g['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
