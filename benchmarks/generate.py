"""Speed and memory of generation (``a2v generate``).

Speed: frames per second of each recipe's ``generate`` (the networks alone, no face detection or
encoding) at 64², 128² and 256², with the CPU presets of ``config/cpu_bench.yaml`` (untrained weights:
the speed does not depend on them), on the audio features of a real GRID clip tiled to
``--seconds``, the networks laid out as ``a2v generate`` loads them (:func:`a2v.inference.inference_layout`,
channels-last). OneShotA2V reads MFCC here (``content.kind: mfcc``) rather than Whisper frames, whose
encoder cost is the features stage's. MAN generates autoregressively (its predictor reads the
previous frames): ``batch`` 1 is exact, ``--man-batches`` > 1 makes the frames of a block share the
history at the block's start (an approximation); the others run blocks of frames exactly, CRAN and
SDGAN carrying their GRU state from block to block.

What a MAN batch changes: ``--man-checkpoint`` (the demo's trained MAN, 64²) generates a real GRID
clip at each batch and prints the frames' difference from batch 1 (mean and max |Δ| in grey levels,
PSNR) and the mouth's (the lower half of the face).

Memory: peak RSS of ``a2v generate`` (each run in a wrapper process of its own that reads
``resource.getrusage(RUSAGE_CHILDREN)``: the largest of the run's processes, ffmpeg included) for
``--memory-seconds`` of speech (10 s and 120 s by default) with ``--checkpoint`` (the demo's SDGAN
by default: the fastest generator, the path measured is the same for all), the photo pasted back.
The audio features are computed 100 frames at a time, the model turns each chunk into frames
and each frame is pasted back and written to ffmpeg, so the runs' peaks should be within 10 % of
each other (measured on the demo checkpoint, a loaded 2-core machine: 609 MB for 10 s, 624 MB for
120 s; 621 MB and 922 MB when the whole clip's features and frames were held).

    python benchmarks/generate.py [--sizes 64 128 256] [--models man oneshota2v cran sdgan]
                                  [--man-batches 1 4 8] [--man-checkpoint results/man_grid/phase2/checkpoint.pt]
                                  [--checkpoint results/sdgan_grid/phase1/checkpoint.pt] [--threads 2]
                                  [--memory-seconds 10 120] [--skip-speed] [--skip-memory]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT / "resources" / "grid_sample"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _presets() -> dict:
    cfg = yaml.safe_load((ROOT / "config" / "cpu_bench.yaml").read_text())
    out = {k: dict(v) for k, v in cfg["model_defaults"].items()}
    out["oneshota2v"]["model"]["content"] = {**out["oneshota2v"]["model"].get("content", {}), "kind": "mfcc"}
    return out


def speed(models: list[str], sizes: list[int], seconds: float, shard: Path, clip: str, man_batches: list[int]) -> None:
    import cv2

    from a2v.features.shard import ShardReader
    from a2v.inference import inference_layout
    from a2v.recipes import make_recipe

    presets = _presets()
    with ShardReader(shard) as r:
        frame0 = r.read(clip, "frames", slice(0, 1))[0]
        raw = {k: r.read(clip, k) for k in ("mfcc", "mel", "f0_bin", "energy_bin", "flow", "heatmaps", "mfcc_cran") if r.has(clip, k)}
    n = int(round(seconds * 25))
    tiled = {k: np.concatenate([v] * (n // len(v) + 1))[:n] for k, v in raw.items()}
    print("| model | size | batch | frames | seconds | frames/s |\n|---|---|---|---|---|---|")
    for name in models:
        for size in sizes:
            preset = presets[name]
            model = {**preset["model"], "image_size": size}
            if name == "sdgan":
                model["net_size"] = size
            recipe = make_recipe(name, model, preset.get("training"), preset["phases"])
            torch.manual_seed(0)
            nets = {k: inference_layout(v, "cpu") for k, v in recipe.build().items()}
            state = recipe.fit_state([(shard, clip)])
            ref = cv2.resize(frame0, (size, size), interpolation=cv2.INTER_LINEAR)
            feats = {k: tiled[k] for k in recipe.generation_features}
            for batch in (man_batches if name == "man" else [16]):
                recipe.generate(nets, state, ref, {k: v[:8] for k, v in feats.items()}, batch=batch)  # warm-up
                t0 = time.perf_counter()
                frames = recipe.generate(nets, state, ref, feats, batch=batch)
                dt = time.perf_counter() - t0
                assert frames.shape == (n, size, size, 3)
                exact = "exact" if name != "man" or batch == 1 else "approx."
                print(f"| {name} | {size}² | {batch} ({exact}) | {n} | {dt:.1f} | {n / dt:.1f} |", flush=True)


def man_batch_drift(checkpoint: Path, shard: Path, clip: str, batches: list[int]) -> None:
    """How far a trained MAN's frames at ``batch`` > 1 are from exact autoregression (batch 1)."""
    from a2v.features.shard import ShardReader
    from a2v.inference import load_generator

    model = load_generator(checkpoint, "cpu")
    with ShardReader(shard) as r:
        frames = r.read(clip, "frames")
        feats = {k: r.read(clip, k) for k in model.feature_keys}
    if frames.shape[1] != model.image_size:
        raise SystemExit(f"{checkpoint}: a {model.image_size}² model, the clip's crops are {frames.shape[1]}²")
    exact = model.generate(frames[0], feats, batch=1).astype(np.float64)
    mouth = slice(exact.shape[1] // 2, None)
    print(f"\nMAN at batch b against exact autoregression (b = 1): {checkpoint}, clip {clip} ({len(exact)} frames)\n")
    print("| batch | mean abs diff | max abs diff | PSNR dB | mouth mean abs diff |\n|---|---|---|---|---|")
    for b in batches:
        if b == 1:
            continue
        out = model.generate(frames[0], feats, batch=b).astype(np.float64)
        d = np.abs(out - exact)
        psnr = 10 * np.log10(255.0 ** 2 / max(float((d ** 2).mean()), 1e-12))
        print(f"| {b} | {d.mean():.2f} | {d.max():.0f} | {psnr:.1f} | {d[:, mouth].mean():.2f} |", flush=True)


def memory(checkpoint: Path, tmp: Path, lengths: list[int] = (10, 120)) -> None:
    import cv2
    import soundfile

    from a2v.io.audio import load_audio
    from a2v.io.video import read_frames

    photo = tmp / "photo.png"
    cv2.imwrite(str(photo), cv2.cvtColor(read_frames(GRID / "s1" / "bgbn8n.mpg")[0], cv2.COLOR_RGB2BGR))
    speech = np.concatenate([load_audio(p, 44100) for p in sorted((GRID / "s1").glob("*.mpg"))])
    print("\n| speech | frames | wall s | frames/s end to end | peak RSS |\n|---|---|---|---|---|")
    for seconds in lengths:
        wav = tmp / f"speech{seconds}.wav"
        soundfile.write(wav, np.tile(speech, seconds * 44100 // len(speech) + 1)[: seconds * 44100], 44100)
        cmd = [sys.executable, "-m", "a2v", "generate", "--image", str(photo), "--audio", str(wav), "--checkpoint",
               str(checkpoint), "-o", str(tmp / f"out{seconds}.mp4")]
        wrapper = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
                   "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", wrapper, *cmd], check=True, capture_output=True, text=True).stdout
        wall = time.perf_counter() - t0
        peak = int(out.split()[-1])
        print(f"| {seconds} s | {seconds * 25} | {wall:.1f} | {seconds * 25 / wall:.1f} | {peak / 1024:.0f} MB |", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["man", "oneshota2v", "cran", "sdgan"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[64, 128, 256])
    ap.add_argument("--seconds", type=float, default=4.0, help="speech per speed measurement")
    ap.add_argument("--man-batches", nargs="+", type=int, default=[1, 4, 8], help="MAN batches (1: exact)")
    ap.add_argument("--man-checkpoint", type=Path, default=ROOT / "results" / "man_grid" / "phase2" / "checkpoint.pt",
                    help="a trained MAN for the batch drift (skipped when missing)")
    ap.add_argument("--checkpoint", type=Path, default=ROOT / "results" / "sdgan_grid" / "phase1" / "checkpoint.pt")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory-seconds", nargs="+", type=int, default=[10, 120], help="speech per memory measurement")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from train_step import _build_shard

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.skip_speed:
            shard = _build_shard(tmp, 64, ["bgbn8n"])
            print(f"CPU, {args.threads} threads, untrained networks of config/cpu_bench.yaml's presets:\n", flush=True)
            speed(args.models, args.sizes, args.seconds, shard, "bgbn8n", args.man_batches)
            if "man" in args.models and args.man_checkpoint.is_file():
                man_batch_drift(args.man_checkpoint, shard, "bgbn8n", args.man_batches)
            elif "man" in args.models:
                print(f"\nMAN batch drift: NA ({args.man_checkpoint} missing; make demo trains one)")
        if not args.skip_memory:
            if not args.checkpoint.is_file():
                raise SystemExit(f"{args.checkpoint}: no checkpoint for the memory measurement (make demo writes one)")
            memory(args.checkpoint, tmp, args.memory_seconds)


if __name__ == "__main__":
    main()
