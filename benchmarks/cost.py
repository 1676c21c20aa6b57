"""What a full corpus costs, from measurements: preprocessing core-hours for all of GRID and all of
VoxCeleb2, and each paper schedule's training hours at the measured step time.

    python benchmarks/cost.py --results results/cpu_bench --dataset grid

Preprocessing: the CPU seconds that Snakemake's ``benchmark:`` files of a real run recorded for
extract, align and features (``<results>/benchmarks/<stage>/<dataset>_<speaker>.tsv``, column
``cpu_time``), divided by the frames the run kept (``<results>/features/<dataset>/<speaker>.tsv``),
give CPU seconds per frame; times the corpus's frames (25 fps):

* GRID: 33 speakers with video × 1000 clips × 3 s (Cooke et al. 2006) = 2,475,000 frames;
* VoxCeleb2: 2,442 hours of video, 1,128,246 clips of 6,112 speakers (Chung et al., Interspeech
  2018, Table 1) = 219.8 M frames.

The per-frame cost depends on the crop size of the run measured (flow and warping grow with it).

Training: steps of each GRID experiment's schedule in config/config.yaml (epochs × samples per
epoch / batch; a recipe's samples per epoch are GRID's 5000 training clips × 75 frames divided by
its window: MAN 1, OneShotA2V 5, CRAN 70, SDGAN 25) times the seconds per step that
``benchmarks/train_step.py --preset paper`` measured (``--step NAME=SECONDS@BATCH``, scaled linearly
to the config's batch size). Without a GPU (the ``device`` tool lent none to this project), these
are CPU hours, given to show the order of magnitude; a GPU row needs the same benchmark on a GPU.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

STAGES = ("extract", "align", "features")
CORPORA = {"GRID (33 speakers × 1000 clips × 3 s)": 33 * 1000 * 75,
           "VoxCeleb2 (2,442 h, 1,128,246 clips)": int(2442 * 3600 * 25)}
WINDOW = {"man": 1, "oneshota2v": 5, "cran": 70, "sdgan": 25}
GRID_TRAIN_FRAMES = 5000 * 75
# seconds per step of the paper presets, measured by benchmarks/train_step.py on this 2-core CPU (README)
DEFAULT_STEPS = ["man_grid=128.6@8", "oneshota2v_grid=58.5@1", "cran_grid=97.6@2", "sdgan_grid=57.3@4"]


def preprocessing(results: Path, dataset: str) -> tuple[pd.DataFrame, int]:
    frames = 0
    for summary in sorted((results / "features" / dataset).glob("*.tsv")):
        t = pd.read_csv(summary, sep="\t")
        frames += int(t.loc[t.status == "ok", "n_frames"].sum())
    rows = []
    for stage in STAGES:
        cpu = sum(float(pd.read_csv(f, sep="\t")["cpu_time"].iloc[-1])
                  for f in sorted((results / "benchmarks" / stage).glob(f"{dataset}_*.tsv")))
        rows.append({"stage": stage, "cpu_s": cpu})
    table = pd.DataFrame(rows)
    if frames == 0 or table.cpu_s.sum() == 0:
        raise SystemExit(f"{results}: no features summaries or benchmark files for {dataset}; run the workflow first")
    return table, frames


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=Path("results/cpu_bench"))
    p.add_argument("--dataset", default="grid")
    p.add_argument("--config", default="config/config.yaml")
    p.add_argument("--step", nargs="*", default=DEFAULT_STEPS, metavar="EXP=SECONDS@BATCH")
    args = p.parse_args(argv)

    table, frames = preprocessing(args.results, args.dataset)
    per_frame = table.cpu_s.sum() / frames
    print(f"Preprocessing, measured on {frames:,} frames of {args.results}/features/{args.dataset} (CPU seconds):")
    for r in table.itertuples():
        print(f"  {r.stage:9s} {r.cpu_s:8.1f} s   {frames / r.cpu_s:7.1f} frames per CPU-second")
    print(f"  end to end {per_frame * 1000:.2f} ms per frame ({1 / per_frame:.1f} frames per CPU-second)")
    print("\n| corpus | frames | preprocessing core-hours |\n|---|---|---|")
    for name, n in CORPORA.items():
        print(f"| {name} | {n / 1e6:.1f} M | {n * per_frame / 3600:,.0f} |")

    from a2v.config import experiment, load_config

    config = load_config([args.config])
    print("\n| experiment | schedule | steps | s/step (batch) measured | hours at that speed |\n|---|---|---|---|---|")
    for item in args.step:
        name, _, rest = item.partition("=")
        seconds, _, batch = rest.partition("@")
        exp = experiment(config, name)
        b = int(exp["training"]["batch_size"])
        samples = GRID_TRAIN_FRAMES // WINDOW[exp["model_type"]]
        epochs = sum(float(ph.get("epochs", 0)) for ph in exp["phases"])
        steps = int(epochs * samples / b)
        step_s = float(seconds) * b / int(batch or b)
        print(f"| {name} | {epochs:g} epochs, batch {b} | {steps:,} | {float(seconds):.1f} ({batch}) | {steps * step_s / 3600:,.0f} CPU |")


if __name__ == "__main__":
    main()
