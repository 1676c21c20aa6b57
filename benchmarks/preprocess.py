"""Speed of the preprocessing stages (extract, align, features) on real GRID clips, against the naive path.

Runs the pipeline's own stage functions (:mod:`a2v.stages`) on ``--clips`` clips of speaker s1 of
``../shared/data/grid`` (all 300 by default; falls back to ``resources/grid_sample``), one process,
and prints for each stage and end to end:

* ``frames/s``        frames processed per second of wall time;
* ``frames/s/core``   frames per second of CPU time (user + system of this process *and* its
                      children — the ffmpeg decoders), i.e. the throughput one core delivers;
* the CPU cores the stage kept busy on average (CPU time / wall time).

The comparison is the naive path that peer projects use: the dlib HOG detector and the 68-point
shape predictor on every frame (``--naive-upsample`` upsamplings, 1 = dlib's usual call
``detector(img, 1)``), timed on the same decoded frames, both alone (landmarks only) and end to
end (the same pipeline with ``detect_every: 1``).

Usage::

    python benchmarks/preprocess.py [--clips 300] [--crop 256] [--source ../shared/data/grid]
                                    [--naive-clips 40] [--profile]

It also measures what tracking costs in accuracy: the mean distance between the landmarks of the
tracked path and those of detection on every frame (same upsampling), in pixels and in
inter-ocular distances, over the naive subset.

OpenCV runs single-threaded, as in the workflow's stage processes (``a2v.cli``).
``--profile`` prints the top functions by internal time (cProfile) of the end-to-end run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "grid"


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Timer:
    """Wall and CPU time (self + children) of a block."""

    def __enter__(self):
        self.w0, self.c0 = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.w0
        self.cpu = cpu_seconds() - self.c0


def make_corpus(source: Path, n_clips: int, dest: Path) -> Path:
    """A GRID-layout folder with symlinks to the first ``n_clips`` clips of s1 (sorted)."""
    clips = sorted((source / "s1").glob("*.mpg"))[:n_clips]
    (dest / "s1").mkdir(parents=True)
    (dest / "alignments" / "s1").mkdir(parents=True)
    for clip in clips:
        (dest / "s1" / clip.name).symlink_to(clip.resolve())
        align = source / "alignments" / "s1" / f"{clip.stem}.align"
        if align.exists():
            (dest / "alignments" / "s1" / align.name).symlink_to(align.resolve())
    return dest


def config_for(corpus: Path, out: Path, crop: int, detect_every: int, upsample: int) -> dict:
    from a2v.config import load_config

    override = out / "override.yaml"
    override.parent.mkdir(parents=True, exist_ok=True)
    override.write_text(yaml.safe_dump({
        "results_dir": str(out), "resources_dir": str(out / "resources"),
        "datasets": {"grid": {"source": str(corpus), "speakers": ["s1"], "unseen_speakers": []}},
        "preprocess": {"crop_size": crop, "landmarks": {"backend": "dlib", "detect_every": detect_every, "upsample": upsample}},
    }))
    return load_config([ROOT / "config" / "config.yaml", override])


def run_stages(config: dict, out: Path) -> tuple[dict[str, Timer], int]:
    """Time ingest, extract, align and features; returns the timers and the frames decoded."""
    import h5py

    from a2v.stages import align, extract, features, ingest

    timers = {}
    interim = out / "interim"
    with Timer() as timers["ingest"]:
        index = ingest.run(config, "grid", out / "index.tsv")
    with Timer() as timers["extract"]:
        ext = extract.run(config, index, "s1", interim / "extract.h5", interim / "extract.tsv")
    with Timer() as timers["align"]:
        ali = align.run(config, ext, "s1", interim / "aligned.h5", interim / "align.tsv")
    with Timer() as timers["features"]:
        features.run(config, "grid", "s1", index, ext, ali, out / "s1.h5", out / "features.tsv")
    with h5py.File(ext) as h5:
        n_frames = sum(int(h5[k].attrs["n_frames"]) for k in h5)
    return timers, n_frames


def time_landmarks(corpus: Path, n_clips: int, detect_every: int, upsample: int) -> tuple[Timer, int, list[np.ndarray]]:
    """Landmarks of the first ``n_clips`` clips (decoding not timed); returns the timer, the
    frames and the landmarks of each clip."""
    from a2v.face.landmarks import DlibBackend
    from a2v.io.video import read_frames

    backend = DlibBackend(detect_every=detect_every, upsample=upsample)
    total = Timer()
    total.wall = total.cpu = 0.0
    n, found = 0, []
    for clip in sorted((corpus / "s1").glob("*.mpg"))[:n_clips]:
        frames = read_frames(clip)
        with Timer() as t:
            landmarks, _ = backend(frames)
        total.wall += t.wall
        total.cpu += t.cpu
        n += len(frames)
        found.append(landmarks)
    return total, n, found


def row(name: str, n: int, t: Timer) -> str:
    return f"{name:<34} {n:>7d} {t.wall:>9.1f} {n / t.wall:>10.1f} {n / max(t.cpu, 1e-9):>14.1f} {t.cpu / t.wall:>6.2f}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, default=SHARED if SHARED.is_dir() else ROOT / "resources" / "grid_sample")
    ap.add_argument("--clips", type=int, default=300)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--detect-every", type=int, default=5)
    ap.add_argument("--upsample", type=int, default=0)
    ap.add_argument("--naive-clips", type=int, default=40, help="clips for the naive paths (they are slow)")
    ap.add_argument("--naive-upsample", type=int, default=1)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args(argv)
    import cv2

    cv2.setNumThreads(1)  # as a2v.cli does for the stage processes

    work = Path(tempfile.mkdtemp(prefix="a2v_bench_pre_"))
    try:
        corpus = make_corpus(args.source, args.clips, work / "corpus")
        n_clips = len(list((corpus / "s1").glob("*.mpg")))
        print(f"# {n_clips} clips of s1 from {args.source}, crop {args.crop} px, detect_every {args.detect_every}, "
              f"upsample {args.upsample}; {os.cpu_count()} cores on this machine, stages run in one process")
        cfg = config_for(corpus, work / "ours", args.crop, args.detect_every, args.upsample)
        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
        with Timer() as total:
            timers, n = run_stages(cfg, work / "ours")
        if args.profile:
            prof.disable()
        header = f"{'stage':<34} {'frames':>7} {'wall (s)':>9} {'frames/s':>10} {'frames/s/core':>14} {'cores':>6}"
        print(header)
        print(f"{'ingest (index only)':<34} {n:>7d} {timers['ingest'].wall:>9.2f}")
        for name, t in timers.items():
            if name != "ingest":
                print(row(name, n, t))
        e2e = Timer()
        e2e.wall = sum(t.wall for t in timers.values())
        e2e.cpu = sum(t.cpu for t in timers.values())
        print(row("end to end (ours)", n, e2e))
        shard = work / "ours" / "s1.h5"
        print(f"# shard {shard.stat().st_size / 2**20:.1f} MiB = {shard.stat().st_size / n / 1024:.0f} KiB/frame")

        nn = min(args.naive_clips, n_clips)
        ours_lm, n_naive, tracked = time_landmarks(corpus, nn, args.detect_every, args.upsample)
        same_lm, _, detected = time_landmarks(corpus, nn, 1, args.upsample)
        naive_lm, _, _ = time_landmarks(corpus, nn, 1, args.naive_upsample)
        print(f"# landmarks only, {nn} clips ({n_naive} frames), decoding excluded:")
        print(row(f"ours (detect every {args.detect_every}, up {args.upsample})", n_naive, ours_lm))
        print(row(f"naive dlib (every frame, up {args.upsample})", n_naive, same_lm))
        if args.naive_upsample != args.upsample:
            print(row(f"naive dlib (every frame, up {args.naive_upsample})", n_naive, naive_lm))
        a, b = np.concatenate(tracked), np.concatenate(detected)
        both = np.isfinite(a).all(axis=(1, 2)) & np.isfinite(b).all(axis=(1, 2))
        dist = np.linalg.norm(a[both] - b[both], axis=-1).mean(axis=1)
        iod = np.linalg.norm(b[both, 36:42].mean(1) - b[both, 42:48].mean(1), axis=-1)
        print(f"# tracking vs detection on every frame: {dist.mean():.2f} px mean landmark distance "
              f"(95th percentile {np.percentile(dist, 95):.2f} px), {np.mean(dist / iod):.4f} inter-ocular distances, "
              f"{int(both.sum())} frames with a face in both, {int((~both).sum())} in one only")

        # End to end with the naive landmark path, on the naive subset.
        sub = make_corpus(args.source, nn, work / "corpus_naive")
        cfg_n = config_for(sub, work / "naive", args.crop, 1, args.naive_upsample)
        t_naive, n_e2e = run_stages(cfg_n, work / "naive")
        naive_e2e = Timer()
        naive_e2e.wall = sum(t.wall for t in t_naive.values())
        naive_e2e.cpu = sum(t.cpu for t in t_naive.values())
        print(f"# end to end with the naive landmark path (detect every frame, up {args.naive_upsample}), {nn} clips:")
        print(row("end to end (naive)", n_e2e, naive_e2e))
        ratio = (n / e2e.cpu) / (n_e2e / naive_e2e.cpu)
        print(f"# end to end, ours / naive (frames/s/core): {ratio:.2f}x; landmarks, ours / naive: "
              f"{naive_lm.cpu / ours_lm.cpu:.2f}x (up {args.naive_upsample}), {same_lm.cpu / ours_lm.cpu:.2f}x (up {args.upsample})")
        if args.profile:
            print("# top functions by internal time (ours, end to end)")
            pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(20)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
