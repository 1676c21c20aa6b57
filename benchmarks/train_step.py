"""Speed and memory of one training step of a recipe (MAN: generator + predictor + discriminator;
OneShotA2V: content head + SPADE generator + frame D + temporal D with the frozen sync D and eye
regressor), on real GRID frames.

Builds a temporary feature shard of clips of ``resources/grid_sample/s1`` with the pipeline's own
stages (aligned crops of ``--size`` pixels, :func:`a2v.stages.preprocess.build_shards`), draws batches with the training :class:`FrameDataset`, and times
:class:`a2v.recipes.man.step.ManStep` (built by the ``man`` recipe, as the train rule builds it) with every loss on (adv, l1_lower, fm, perceptual, cam,
flow_mse / keypoint_mse), the discriminator on and predicted motion — the costliest phase.
The perceptual VGG is ``--perceptual`` (``vgg16_hed`` offline by default; ``none`` leaves it out).

Prints G+D steps per second, seconds per step, peak memory (CPU: max RSS of this process from
``resource.getrusage``; CUDA: ``torch.cuda.max_memory_allocated``) and parameter counts.

OneShotA2V (``--model oneshota2v``): the last curriculum phase, every loss on (adv, fm,
perceptual, l1_lower, temporal_adv, sync, blink), batches of ``--batch`` windows of 5 frames; its
sync discriminator and eye regressor are pretrained for one step by their own trainers (the
speed does not depend on their weights). Presets: ``paper`` = the recipe's defaults (base 64, max
1024, D base 64); ``cpu`` = config/demo.yaml's (base 16, max 128, D base 32).

Speech-driven GAN (``--model sdgan``, Jain et al.): one step with both discriminators and every
term (frame_adv, seq_adv, l1_lower), batches of ``--batch`` windows of ``--sequence-length`` frames
(default: the preset's). Presets: ``paper`` = config/config.yaml's ``model_defaults.sdgan`` (networks
at 128², frames of ``--size``; 25-frame windows); ``cpu`` = config/demo.yaml's (networks at
``--size``, narrow layers, 16-frame windows).

CRAN (``--model cran``, Song et al.): the RAE phase with every term on (rec, perceptual,
adv_image, adv_match: GRU on, both heads of the multi-task D), batches of ``--batch`` windows of
``--sequence-length`` frames (default: the preset's). Presets: ``paper`` = config/config.yaml's
``model_defaults.cran`` (Tables 5–8, 70-frame windows, perceptual VGG16 to relu4_3); ``cpu`` =
config/demo.yaml's (narrow layers, 8-frame windows, VGG16 to relu3_3).

Usage::

    python benchmarks/train_step.py --model man|oneshota2v|sdgan|cran --size 256 --batch 8 --steps 5 --device cpu [--preset paper|cpu]
        [--perceptual vgg16_hed|vgg19_imagenet|none] [--motion flow|keypoints]
        [--video-branch conv2d|partial_conv2d|conv2d_eca] [--audio-branch conv1d|lstm]

Presets: ``paper`` = :class:`ManConfig` defaults (base 64, max 512, γ/β hidden 128/64; D base 64,
3 scales); ``cpu`` = the small configuration for CPU runs (base 16, max 128, hidden 32/32,
MFCC encoder 64; predictor base 16; D base 32, 3 scales).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT / "resources" / "grid_sample"

ONESHOT_PRESETS = {
    "paper": {},
    "cpu": {"base_channels": 16, "max_channels": 128, "content": {"hidden": 32, "out_dim": 64},
            "frame_discriminator": {"base_channels": 32}, "temporal_discriminator": {"window": 5, "base_channels": 32}},
}

SDGAN_PRESETS = {
    "paper": {"model": {"net_size": 128}, "sequence_length": 25},
    "cpu": {"model": {"audio_channels": 16, "audio_fc": 128, "audio_code": 64, "audio_rnn": 64, "id_channels": 16,
                      "max_channels": 128, "frame_discriminator": {"base_channels": 16, "max_channels": 128, "hidden": 64},
                      "sequence_discriminator": {"frame_channels": 16, "max_channels": 64, "frame_code": 64, "audio_channels": 8,
                                                 "audio_fc": 64, "audio_code": 32, "rnn_hidden": 64, "hidden": 64}},
            "sequence_length": 16},
}
"""The sdgan presets: ``model`` keys and training window (config/config.yaml and config/demo.yaml's ``model_defaults.sdgan``)."""

CRAN_PRESETS = {
    "paper": {"model": {}, "sequence_length": 70, "layers": ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]},
    "cpu": {"model": {"audio_channels": 16, "image_channels": 16, "hidden": 128, "code_dim": 64, "discriminator": {"base_channels": 8}},
            "sequence_length": 8, "layers": ["relu1_2", "relu2_2", "relu3_3"]},
}
"""The cran presets: ``model`` keys, training window and perceptual layers (config/config.yaml and config/demo.yaml's ``model_defaults.cran``)."""

PRESETS = {
    "paper": {"model": {}},
    "cpu": {
        "model": {
            "base_channels": 16,
            "max_channels": 128,
            "video_hidden": 32,
            "audio_hidden": 32,
            "audio_channels": 64,
            "predictor": {"base_channels": 16},
            "discriminator": {"base_channels": 32},
        }
    },
}


def _build_shard(out: Path, size: int, clips: list[str]) -> Path:
    """A real shard of the given s1 clips at ``size``², made by the pipeline's own stages."""
    import shutil

    import yaml

    from a2v.config import load_config
    from a2v.stages.preprocess import build_shards

    corpus = out / "corpus"
    for sub in ("s1", "alignments/s1"):
        (corpus / sub).mkdir(parents=True)
    for name in clips:
        shutil.copy(GRID / "s1" / f"{name}.mpg", corpus / "s1")
        shutil.copy(GRID / "alignments" / "s1" / f"{name}.align", corpus / "alignments" / "s1")
    override = out / "bench.yaml"
    override.write_text(yaml.safe_dump({
        "results_dir": str(out), "resources_dir": str(out / "resources"),
        "datasets": {"grid": {"source": str(corpus), "speakers": ["s1"], "unseen_speakers": []}},
        "preprocess": {"crop_size": size, "min_frames": 25},
    }))
    return build_shards(load_config([ROOT / "config" / "config.yaml", override]), "grid", out)["s1"]


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="man", choices=["man", "oneshota2v", "sdgan", "cran"])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5, help="timed steps (after --warmup)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="paper")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--clips", default="bgbn8n,lgbgzp")
    ap.add_argument("--perceptual", default="vgg16_hed", choices=["vgg16_hed", "vgg19_imagenet", "none"])
    ap.add_argument("--motion", default="flow", choices=["flow", "keypoints"])
    ap.add_argument("--video-branch", default="conv2d_eca", choices=["conv2d", "partial_conv2d", "conv2d_eca"])
    ap.add_argument("--audio-branch", default="lstm", choices=["conv1d", "lstm"])
    ap.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    ap.add_argument("--sequence-length", type=int, default=0, help="sdgan, cran: frames per window (0: the preset's)")
    args = ap.parse_args(argv)

    from a2v.models.man import count_parameters
    from a2v.recipes import make_recipe
    from a2v.training.data import StepBatchSampler
    from a2v.training.settings import use_channels_last

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.model == "oneshota2v":
        return _oneshot(args, device)
    if args.model == "sdgan":
        return _sdgan(args, device)
    if args.model == "cran":
        return _cran(args, device)
    preset = PRESETS[args.preset]
    losses = {"perceptual": 10.0} if args.perceptual != "none" else {}
    training = {"batch_size": args.batch, "precision": args.precision}
    if args.perceptual != "none":
        training["perceptual"] = {"backbone": args.perceptual, "download": False}
    model = {**preset["model"], "image_size": args.size, "motion": args.motion, "video_branch": args.video_branch,
             "audio_branch": args.audio_branch}
    phases = [{"name": "bench", "steps": args.warmup + args.steps, "motion_source": "predicted", "losses": losses}]
    recipe = make_recipe("man", model, training, phases)  # the train rule's path: recipe → networks, optimisers, step
    torch.manual_seed(0)
    nets = {k: v.to(device) for k, v in recipe.build().items()}
    if use_channels_last(None, device):
        nets = {k: v.to(memory_format=torch.channels_last) for k, v in nets.items()}
    step = recipe.trainer(nets, recipe.optimizers(nets), recipe.phases[0], device, lambda m: print(m, file=sys.stderr))
    G, P, D = nets["generator"], nets["predictor"], nets["discriminator"]

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        shard = _build_shard(Path(tmp), args.size, args.clips.split(","))
        clips = [(str(shard), c) for c in args.clips.split(",")]
        dataset = recipe.dataset(clips, recipe.fit_state(clips))
        print(f"data: {len(dataset)} real frames at {args.size}px prepared in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        loader = DataLoader(dataset, batch_sampler=StepBatchSampler(len(dataset), args.batch, 0, 0, args.warmup + args.steps))
        batches = list(loader)

    dt = _time_steps(step, batches, args.warmup, device)
    n_g, n_d, n_p = (count_parameters(m) for m in (G, D, P))
    print(
        f"preset={args.preset} size={args.size} batch={args.batch} device={device} threads={torch.get_num_threads()} "
        f"motion={args.motion} branches={args.video_branch}+{args.audio_branch} perceptual={args.perceptual} "
        f"{'bf16' if step.bf16 else 'fp32'} "
        f"steps={args.steps}: {args.steps / dt:.3f} G+D steps/s ({dt / args.steps:.2f} s/step, "
        f"{args.batch * args.steps / dt:.1f} frames/s); peak memory {_peak_memory_mb(device):.0f} MiB "
        f"({'CUDA max allocated' if device.type == 'cuda' else 'max RSS'}); "
        f"params G {n_g / 1e6:.2f} M, D {n_d / 1e6:.2f} M, predictor {n_p / 1e6:.2f} M"
    )
    return 0


def _time_steps(step, batches: list, warmup: int, device: torch.device) -> float:
    """Seconds for the batches after the first ``warmup`` (CUDA synchronised, peak memory reset after warm-up)."""
    for b in batches[:warmup]:
        step(b)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    t = time.perf_counter()
    for b in batches[warmup:]:
        step(b)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t


def _oneshot(args, device: torch.device) -> int:
    """The OneShotA2V benchmark (see the module docstring)."""
    from a2v.recipes import make_recipe
    from a2v.training.data import StepBatchSampler
    from a2v.training.eye_landmarks import train_eye_landmarks
    from a2v.training.sync_discriminator import train_sync_discriminator

    training = {"batch_size": args.batch, "precision": args.precision}
    losses = {"adv": 1.0, "fm": 10.0, "l1_lower": 10.0, "temporal_adv": 1.0, "sync": 1.0, "blink": 10.0,
              "perceptual": 10.0 if args.perceptual != "none" else 0.0}
    if args.perceptual != "none":
        training["perceptual"] = {"backbone": args.perceptual, "download": False}
    phases = [{"name": "bench", "steps": args.warmup + args.steps, "discriminators": ["frame", "temporal", "sync"], "losses": losses}]
    recipe = make_recipe("oneshota2v", {**ONESHOT_PRESETS[args.preset], "image_size": args.size}, training, phases)
    torch.manual_seed(0)
    nets = {k: v.to(device) for k, v in recipe.build().items()}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        shard = _build_shard(Path(tmp), args.size, args.clips.split(","))
        clips = [(str(shard), c) for c in args.clips.split(",")]
        quiet = lambda m: None  # noqa: E731
        recipe.use_pretrained({
            "sync_discriminator": str(train_sync_discriminator({"training": {"steps": 1}}, clips, Path(tmp) / "sync", log=quiet)),
            "eye_landmarks": str(train_eye_landmarks({"training": {"steps": 1}}, clips, Path(tmp) / "eyes", log=quiet)),
        })
        dataset = recipe.dataset(clips, recipe.fit_state(clips))
        print(f"data: {len(dataset)} real 5-frame windows at {args.size}px prepared in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        loader = DataLoader(dataset, batch_sampler=StepBatchSampler(len(dataset), args.batch, 0, 0, args.warmup + args.steps))
        batches = list(loader)
        step = recipe.trainer(nets, recipe.optimizers(nets), recipe.phases[0], device, lambda m: print(m, file=sys.stderr))
    dt = _time_steps(step, batches, args.warmup, device)
    counts = {k: sum(p.numel() for p in v.parameters()) / 1e6 for k, v in nets.items()}
    frames = args.batch * recipe.window
    print(
        f"model=oneshota2v preset={args.preset} size={args.size} batch={args.batch}x{recipe.window} frames device={device} "
        f"threads={torch.get_num_threads()} perceptual={args.perceptual} {'bf16' if step.bf16 else 'fp32'} "
        f"steps={args.steps}: {args.steps / dt:.3f} G+D steps/s ({dt / args.steps:.2f} s/step, {frames * args.steps / dt:.1f} frames/s); "
        f"peak memory {_peak_memory_mb(device):.0f} MiB ({'CUDA max allocated' if device.type == 'cuda' else 'max RSS'}); "
        f"params " + ", ".join(f"{k} {v:.2f} M" for k, v in counts.items())
    )
    return 0


def _sdgan(args, device: torch.device) -> int:
    """The speech-driven GAN benchmark (see the module docstring)."""
    from a2v.recipes import make_recipe
    from a2v.training.data import StepBatchSampler

    preset = SDGAN_PRESETS[args.preset]
    length = args.sequence_length or preset["sequence_length"]
    training = {"batch_size": args.batch, "precision": args.precision, "sequence_length": length}
    phases = [{"name": "bench", "steps": args.warmup + args.steps, "discriminators": ["frame", "sequence"],
               "losses": {"frame_adv": 1.0, "seq_adv": 1.0, "l1_lower": 100.0}}]
    recipe = make_recipe("sdgan", {**preset["model"], "image_size": args.size}, training, phases)
    torch.manual_seed(0)
    nets = {k: v.to(device) for k, v in recipe.build().items()}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        shard = _build_shard(Path(tmp), args.size, args.clips.split(","))
        clips = [(str(shard), c) for c in args.clips.split(",")]
        dataset = recipe.dataset(clips, recipe.fit_state(clips))
        print(f"data: {len(dataset)} real {length}-frame windows at {args.size}px prepared in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        loader = DataLoader(dataset, batch_sampler=StepBatchSampler(len(dataset), args.batch, 0, 0, args.warmup + args.steps))
        batches = list(loader)
    step = recipe.trainer(nets, recipe.optimizers(nets), recipe.phases[0], device, lambda m: print(m, file=sys.stderr))
    dt = _time_steps(step, batches, args.warmup, device)
    counts = {k: sum(p.numel() for p in v.parameters()) / 1e6 for k, v in nets.items()}
    frames = args.batch * length
    print(
        f"model=sdgan preset={args.preset} size={args.size} net={recipe.model.size} batch={args.batch}x{length} frames device={device} "
        f"threads={torch.get_num_threads()} {'bf16' if step.bf16 else 'fp32'} "
        f"steps={args.steps}: {args.steps / dt:.3f} G+D steps/s ({dt / args.steps:.2f} s/step, {frames * args.steps / dt:.1f} frames/s); "
        f"peak memory {_peak_memory_mb(device):.0f} MiB ({'CUDA max allocated' if device.type == 'cuda' else 'max RSS'}); "
        f"params " + ", ".join(f"{k} {v:.2f} M" for k, v in counts.items())
    )
    return 0


def _cran(args, device: torch.device) -> int:
    """The CRAN benchmark (see the module docstring)."""
    from a2v.recipes import make_recipe
    from a2v.training.data import StepBatchSampler

    preset = CRAN_PRESETS[args.preset]
    length = args.sequence_length or preset["sequence_length"]
    training = {"batch_size": args.batch, "precision": args.precision, "sequence_length": length}
    losses = {"rec": 1.0, "adv_image": 1e-3, "adv_match": 1e-3, "perceptual": 1e-4 if args.perceptual != "none" else 0.0}
    if args.perceptual != "none":
        training["perceptual"] = {"backbone": args.perceptual, "layers": preset["layers"], "download": False}
    phases = [{"name": "bench", "steps": args.warmup + args.steps, "recurrent": True, "discriminators": ["image", "matching"],
               "losses": losses}]
    recipe = make_recipe("cran", {**preset["model"], "image_size": args.size}, training, phases)
    torch.manual_seed(0)
    nets = {k: v.to(device) for k, v in recipe.build().items()}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        shard = _build_shard(Path(tmp), args.size, args.clips.split(","))
        clips = [(str(shard), c) for c in args.clips.split(",")]
        dataset = recipe.dataset(clips, recipe.fit_state(clips))
        print(f"data: {len(dataset)} real {length}-frame windows at {args.size}px prepared in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        loader = DataLoader(dataset, batch_sampler=StepBatchSampler(len(dataset), args.batch, 0, 0, args.warmup + args.steps))
        batches = list(loader)
    step = recipe.trainer(nets, recipe.optimizers(nets), recipe.phases[0], device, lambda m: print(m, file=sys.stderr))
    dt = _time_steps(step, batches, args.warmup, device)
    counts = {k: sum(p.numel() for p in v.parameters()) / 1e6 for k, v in nets.items()}
    frames = args.batch * length
    print(
        f"model=cran preset={args.preset} size={args.size} batch={args.batch}x{length} frames device={device} "
        f"threads={torch.get_num_threads()} perceptual={args.perceptual} {'bf16' if step.bf16 else 'fp32'} "
        f"steps={args.steps}: {args.steps / dt:.3f} G+D steps/s ({dt / args.steps:.2f} s/step, {frames * args.steps / dt:.1f} frames/s); "
        f"peak memory {_peak_memory_mb(device):.0f} MiB ({'CUDA max allocated' if device.type == 'cuda' else 'max RSS'}); "
        f"params " + ", ".join(f"{k} {v:.2f} M" for k, v in counts.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
