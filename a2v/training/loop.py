"""MAN training: one call of :func:`train_phase` runs one curriculum phase, resumably.

Config keys read (types and defaults in full in :mod:`a2v.training.config`)::

    model:    ManConfig keys (image_size=256, base_channels=64, max_channels=512,
              channel_mults=null, seed_size=4, n_res_blocks=8, mfcc_shape=[20,13],
              audio_channels=128, mel_dim=256, n_bins=256, motion=flow|keypoints,
              n_keypoints=15, heatmap_size=96, video_branch=conv2d_eca|conv2d|partial_conv2d,
              audio_branch=lstm|conv1d, video_hidden=128, audio_hidden=64, use_motion=true,
              use_mel=true, use_pitch=true, use_energy=true, flow_scale=null,
              spectral_affine=false, cam_shared_fc=false)
              predictor: {base_channels=32, depth=null, mel_channels=16, n_prev=5}
              discriminator: {n_scales=3, base_channels=64, n_layers=3, max_channels=512, cam=true}
    training: {batch_size=8, lr=0.002, betas=[0.0, 0.9], seed=0, checkpoint_every=500,
               log_every=10, num_workers=0, reference=random|first, cache=true,
               gan_loss=original|bce|hinge|lsgan, progress_interval=30.0,
               perceptual: {backbone=vgg19_imagenet|vgg16_hed, weights=null, download=false,
               layers=[relu1_1..relu5_1], layer_weights=null}}
    phases:   [{name="phase{i}", steps | epochs (one required), losses: {adv=1, l1_lower=10,
               fm=10, perceptual=0, cam=1, flow_mse=1 | keypoint_mse=1}, discriminator=true,
               motion_source=ground_truth|predicted, detach_motion=true}]

One step (MAN §4.2, supp. §2.1):

1. The predictor reads the previous 5 real frames and mel[t] (when its MSE is weighted or the
   phase's motion source is ``"predicted"``).
2. The generator makes frame t from the reference, the motion (shard flow/heatmaps or the
   prediction — see :mod:`a2v.training.phases`) and the audio features of t.
3. If the phase has the discriminator: one D update on (real, generated.detach()), each
   concatenated with the reference (``adv`` + ``cam`` terms).
4. One update of generator + predictor (one Adam) on the weighted G terms (the perceptual one
   through a frozen VGG, :mod:`a2v.models.vgg`) and predictor MSE.

A phase given in ``epochs`` runs ``ceil(epochs · training frames / batch_size)`` steps.

Outputs in ``out_dir``: ``losses.csv`` (``step``, ``g_<term>``, ``g_total``, ``d_<term>``,
``d_total``, ``rho_<modality>`` of the first MAN block, ``seconds``), ``last.pt`` every
``checkpoint_every`` steps (removed at the end), ``checkpoint.pt`` when the phase is complete.
A rerun with ``last.pt`` of the same phase resumes from it (rows of ``losses.csv`` after its
step are dropped); a rerun with a complete ``checkpoint.pt`` returns at once.

Precision (``training.precision``): ``"auto"`` runs the forward passes under bf16 autocast with
channels_last tensors on CUDA and in float32 on the CPU; ``"bf16"`` / ``"fp32"`` force one
(``"bf16"`` on the CPU uses CPU autocast — slow, but it runs the same code path as the GPU).
``training.channels_last`` (``null`` → CUDA only) sets the memory format of weights and batches.
Loss terms and optimiser state are float32 in every case.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from a2v.losses.composite import DiscriminatorLoss, GeneratorLoss
from a2v.losses.perceptual import build_perceptual
from a2v.models.man import ManConfig, ManGenerator
from a2v.training.checkpoint import build_models, load_checkpoint, plain, save_checkpoint
from a2v.training.config import PRECISIONS, ParsedConfig, parse_config
from a2v.training.losslog import LossLog
from a2v.training.data import FeatureNormalizer, FrameDataset, StepBatchSampler, count_frames, fit_normalizer
from a2v.training.phases import Phase

_log = logging.getLogger(__name__)

LAST = "last.pt"
FINAL = "checkpoint.pt"
LOSSES = "losses.csv"


def resolve_clips(shard_paths: Sequence[str | Path], train_clips: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Map ``(shard, clip id)`` pairs onto the given shard paths.

    The first element of each pair may be a shard path (as listed in ``shard_paths``, or resolving
    to the same file) or a shard's stem (the speaker id, e.g. ``"s1"``).

    Raises:
        ValueError: a shard that is not among ``shard_paths``, or an ambiguous stem.
    """
    by_resolved = {str(Path(p).resolve()): str(p) for p in shard_paths}
    by_stem: dict[str, list[str]] = {}
    for p in shard_paths:
        by_stem.setdefault(Path(p).stem, []).append(str(p))
    out = []
    for shard, clip_id in train_clips:
        key = str(Path(shard).resolve())
        if key in by_resolved:
            out.append((by_resolved[key], str(clip_id)))
        elif str(shard) in by_stem and len(by_stem[str(shard)]) == 1:
            out.append((by_stem[str(shard)][0], str(clip_id)))
        else:
            raise ValueError(f"clip {clip_id!r}: shard {shard!r} is not one of the shard paths (or is an ambiguous stem)")
    if not out:
        raise ValueError("train_clips is empty")
    return out


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether ``training.precision`` means bf16 autocast on ``device`` (``"auto"``: on CUDA only).

    Raises:
        ValueError: unknown precision.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision == "bf16" or (precision == "auto" and torch.device(device).type == "cuda")


def use_channels_last(channels_last: bool | None, device: torch.device) -> bool:
    """``training.channels_last`` resolved for ``device`` (``None``: on CUDA only)."""
    return torch.device(device).type == "cuda" if channels_last is None else bool(channels_last)


def _emit(log) -> Callable[[str], None]:
    if log is None:
        return _log.info
    if hasattr(log, "info"):
        return log.info
    return log


def _to_device(batch: dict, device: torch.device, channels_last: bool) -> dict:
    out = {}
    for k, v in batch.items():
        v = v.to(device, non_blocking=True)
        if channels_last and v.ndim == 4:
            v = v.contiguous(memory_format=torch.channels_last)
        out[k] = v
    return out


class TrainStep:
    """One MAN training step (predictor → generator → optional D update → G + predictor update).

    Args:
        generator, predictor, discriminator: the networks (on ``device``, train mode).
        opt_g: Adam over generator + predictor parameters; opt_d: Adam over the discriminator's.
        model: the generator's :class:`ManConfig`.
        phase: the :class:`Phase` (loss weights, discriminator on/off, motion source).
        gan_loss: adversarial form for ``adv`` and ``cam``.
        device: where the batch goes.
        perceptual: the perceptual loss network (on ``device``), needed when the phase weights
            ``perceptual``.
        precision: ``"auto"`` (bf16 autocast on CUDA, float32 elsewhere), ``"bf16"``, ``"fp32"``.
        channels_last: batches in channels_last memory format (``None`` → on CUDA).

    Call:
        ``step(batch)`` with a collated :class:`FrameDataset` batch (on any device) →
        ``(g_terms, d_terms)`` dicts of scalar tensors (``d_terms`` empty when D is off).
    """

    def __init__(
        self,
        generator,
        predictor,
        discriminator,
        opt_g,
        opt_d,
        model: ManConfig,
        phase: Phase,
        gan_loss: str,
        device: torch.device,
        perceptual: torch.nn.Module | None = None,
        precision: str = "auto",
        channels_last: bool | None = None,
    ):
        self.G, self.P, self.D = generator, predictor, discriminator
        self.opt_g, self.opt_d = opt_g, opt_d
        self.man, self.phase = model, phase
        self.device = torch.device(device)
        self.bf16 = use_bf16(precision, self.device)
        self.channels_last = use_channels_last(channels_last, self.device)
        self.g_loss = GeneratorLoss(phase.losses, gan_loss, model.effective_flow_scale, perceptual)
        self.d_loss = DiscriminatorLoss(phase.losses, gan_loss)
        self.d_on = phase.discriminator and bool(self.d_loss.active())
        self.need_d_for_g = any(k in self.g_loss.weights for k in ("adv", "fm", "cam"))
        pred_key = "flow_mse" if model.motion == "flow" else "keypoint_mse"
        self.run_pred = (model.use_motion and phase.motion_source == "predicted") or pred_key in self.g_loss.weights
        self.target_key = "flow" if model.motion == "flow" else "heatmaps"

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext()

    def __call__(self, batch: dict) -> tuple[dict, dict]:
        G, P, D, man, phase = self.G, self.P, self.D, self.man, self.phase
        b = _to_device(batch, self.device, self.channels_last)
        ref, real = b["reference"], b["target"]
        with self._autocast():
            pred = P(b["prev_frames"], b["mel"]) if self.run_pred else None
            if not man.use_motion:
                motion = None
            elif phase.motion_source == "ground_truth":
                motion = b[self.target_key]
            else:
                motion = pred.detach() if phase.detach_motion else pred
            fake = G(ref, motion, b["mfcc"], b["mel"], b["f0_bin"], b["energy_bin"])["frame"]

        d_terms, d_real = {}, None
        if self.d_on:
            D.requires_grad_(True)
            with self._autocast():
                d_real = D(real, ref)
                d_fake = D(fake.detach(), ref)
            d_terms = self.d_loss(d_real, d_fake)
            self.opt_d.zero_grad(set_to_none=True)
            d_terms["total"].backward()
            self.opt_d.step()
        D.requires_grad_(False)
        d_fake_g = None
        if self.need_d_for_g:
            with self._autocast():
                d_fake_g = D(fake, ref)
                if d_real is None:
                    d_real = D(real, ref)
        with self._autocast():  # the perceptual VGG runs in bf16 on CUDA; the terms are float32
            g_terms = self.g_loss(fake.float(), real, d_fake_g, d_real, pred, b.get(self.target_key))
        self.opt_g.zero_grad(set_to_none=True)
        g_terms["total"].backward()
        self.opt_g.step()
        return g_terms, d_terms


@dataclass
class PhaseState:
    """A phase ready to run: networks, optimisers and normaliser at ``start_step``.

    Attributes:
        parsed: the parsed config; phase: this phase; phase_index: its index.
        generator, predictor, discriminator: networks on the device.
        opt_g, opt_d: Adam optimisers (G + predictor; D).
        normalizer: MFCC/mel standardisation.
        clips: resolved ``(shard path, clip id)`` training pairs.
        start_step: first step to run (0, or the step of the resumed ``last.pt``).
        elapsed_s: training seconds already spent in this phase.
        resumed: whether ``start_step`` comes from ``out_dir/last.pt``.
    """

    parsed: ParsedConfig
    phase: Phase
    phase_index: int
    generator: ManGenerator
    predictor: torch.nn.Module
    discriminator: torch.nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    normalizer: FeatureNormalizer
    clips: list
    start_step: int = 0
    elapsed_s: float = 0.0
    resumed: bool = False


def prepare_phase(
    config: dict,
    shard_paths: Sequence[str | Path],
    train_clips: Sequence[tuple[str, str]],
    phase_index: int,
    out_dir: str | Path,
    init_checkpoint: str | Path | None = None,
    device: torch.device | str = "cpu",
    log: Callable[[str], None] | logging.Logger | None = None,
) -> PhaseState:
    """Build the networks and optimisers of a phase and load its starting state.

    Priority: ``out_dir/last.pt`` of the same phase (resume) > ``init_checkpoint`` (weights,
    optimiser states and normaliser of the previous phase, step 0) > fresh weights with a
    normaliser fitted on ``train_clips``. Arguments as for :func:`train_phase`.
    """
    emit = _emit(log)
    device = torch.device(device)
    parsed = parse_config(config)
    if not 0 <= phase_index < len(parsed.phases):
        raise ValueError(f"phase_index {phase_index} out of range: config has {len(parsed.phases)} phases")
    tcfg, man = parsed.training, parsed.model
    clips = resolve_clips(shard_paths, train_clips)
    phase = parsed.phases[phase_index].resolved(count_frames(clips), tcfg.batch_size)
    last_path = Path(out_dir) / LAST
    torch.manual_seed(tcfg.seed + 1000 * phase_index)
    models = build_models(man, parsed.predictor, parsed.discriminator)
    G, P, D = (m.to(device) for m in (models.generator, models.predictor, models.discriminator))
    if use_channels_last(tcfg.channels_last, device):
        G, P, D = (m.to(memory_format=torch.channels_last) for m in (G, P, D))
    opt_g = torch.optim.Adam(list(G.parameters()) + list(P.parameters()), lr=tcfg.lr, betas=tcfg.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=tcfg.lr, betas=tcfg.betas)

    state = PhaseState(parsed, phase, phase_index, G, P, D, opt_g, opt_d, None, clips)
    source = None
    if last_path.exists():
        last = load_checkpoint(last_path, map_location=device)
        if last.get("phase_index") == phase_index and last.get("phase_name") == phase.name and last.get("step", 0) < phase.steps:
            source = last
            state.start_step = int(last["step"])
            state.elapsed_s = float(last.get("elapsed_s", 0.0))
            state.resumed = True
            torch.set_rng_state(last["torch_rng"].cpu())
            emit(f"[{phase.name}] resuming from {last_path} at step {state.start_step}/{phase.steps}")
        else:
            emit(f"[{phase.name}] ignoring {last_path}: it belongs to another phase or run")
    if source is None and init_checkpoint is not None:
        source = load_checkpoint(init_checkpoint, map_location=device)
        emit(f"[{phase.name}] initialising from {init_checkpoint} (phase {source.get('phase_name')!r}, step {source.get('step')})")
    if source is not None:
        G.load_state_dict(source["generator"])
        P.load_state_dict(source["predictor"])
        D.load_state_dict(source["discriminator"])
        opt_g.load_state_dict(source["opt_g"])
        opt_d.load_state_dict(source["opt_d"])
        for opt in (opt_g, opt_d):  # this phase's lr/betas win over the stored ones
            for group in opt.param_groups:
                group["lr"], group["betas"] = tcfg.lr, tcfg.betas
        state.normalizer = FeatureNormalizer.from_state_dict(source["normalizer"])
    else:
        state.normalizer = fit_normalizer(clips)
        emit(f"[{phase.name}] fresh start; feature normaliser fitted on {len(clips)} clips")
    return state


def train_phase(
    config: dict,
    shard_paths: Sequence[str | Path],
    train_clips: Sequence[tuple[str, str]],
    phase_index: int,
    out_dir: str | Path,
    init_checkpoint: str | Path | None = None,
    device: torch.device | str = "cpu",
    log: Callable[[str], None] | logging.Logger | None = None,
) -> Path:
    """Run (or resume) phase ``phase_index`` of the MAN curriculum.

    Args:
        config: full config dict (``model``, ``training``, ``phases`` are read; see module doc).
        shard_paths: HDF5 feature shards (``results/features/{dataset}/{speaker}.h5``).
        train_clips: ``(shard path or speaker stem, clip id)`` pairs to train on.
        phase_index: which entry of ``config["phases"]``.
        out_dir: folder for ``losses.csv``, ``last.pt`` and ``checkpoint.pt``.
        init_checkpoint: previous phase's ``checkpoint.pt``: its weights, optimizer states and
            feature normaliser are the start of this phase (step 0). ``None`` for the first
            phase: fresh weights, normaliser fitted on ``train_clips``.
        device: where to train.
        log: a callable taking a line, or a ``logging.Logger`` (default: this module's logger).

    Returns:
        Path of ``out_dir/checkpoint.pt``.

    Raises:
        ValueError: invalid config, phase index, or clip list.
    """
    emit = _emit(log)
    device = torch.device(device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final_path, last_path = out_dir / FINAL, out_dir / LAST
    if final_path.exists():
        parsed = parse_config(config)
        done = load_checkpoint(final_path)
        if 0 <= phase_index < len(parsed.phases) and done.get("complete"):
            phase = parsed.phases[phase_index]
            phase = phase.resolved(count_frames(resolve_clips(shard_paths, train_clips)), parsed.training.batch_size)
            if done.get("phase_index") == phase_index and done.get("phase_name") == phase.name and done.get("step") == phase.steps:
                emit(f"[{phase.name}] {final_path} is complete; nothing to do")
                return final_path

    st = prepare_phase(config, shard_paths, train_clips, phase_index, out_dir, init_checkpoint, device, log)
    phase, tcfg, man = st.phase, st.parsed.training, st.parsed.model
    G, P, D = st.generator, st.predictor, st.discriminator
    dataset = FrameDataset(st.clips, st.normalizer, man.image_size, man.motion, tcfg.reference, tcfg.cache)
    sampler = StepBatchSampler(len(dataset), tcfg.batch_size, tcfg.seed, st.start_step, phase.steps)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=tcfg.num_workers, pin_memory=device.type == "cuda")
    perceptual, perceptual_info = None, None
    if phase.losses.get("perceptual", 0.0) > 0:
        perceptual = build_perceptual(tcfg.perceptual).to(device)
        perceptual_info = perceptual.info.describe()
        emit(f"[{phase.name}] perceptual loss backbone {perceptual_info}, layers {', '.join(perceptual.vgg.layer_names)}")
        if perceptual.info.backbone != "vgg19_imagenet":
            emit(f"[{phase.name}] WARNING: perceptual features are not the paper's ImageNet VGG19 ({perceptual.info.description})")
    stepper = TrainStep(G, P, D, st.opt_g, st.opt_d, man, phase, tcfg.gan_loss, device, perceptual, tcfg.precision, tcfg.channels_last)

    columns = ["step"] + [f"g_{k}" for k in stepper.g_loss.active()] + ["g_total"]
    if stepper.d_on:
        columns += [f"d_{k}" for k in stepper.d_loss.active()] + ["d_total"]
    columns += [f"rho_{n}" for n in G.modality_names] + ["seconds"]
    csv_log = LossLog(out_dir / LOSSES, columns, st.start_step if st.resumed else None)

    emit(
        f"[{phase.name}] {len(st.clips)} clips, {len(dataset)} frames, {man.image_size}px, batch {tcfg.batch_size}, "
        f"steps {st.start_step}->{phase.steps}, losses {stepper.g_loss.weights}, "
        f"discriminator {'on' if stepper.d_on else 'off'}, motion {phase.motion_source}, device {device}, "
        f"{'bf16 autocast' if stepper.bf16 else 'float32'}{', channels_last' if stepper.channels_last else ''}"
    )
    t0 = time.perf_counter()

    def snapshot(step: int, complete: bool) -> dict:
        return {
            "config": plain(config),
            "model_config": man.to_dict(),
            "predictor_config": plain(vars(st.parsed.predictor)),
            "discriminator_config": plain(vars(st.parsed.discriminator)),
            "phase_index": phase_index,
            "phase_name": phase.name,
            "phase_steps": phase.steps,
            "phase": phase.to_dict(),
            "perceptual_backbone": perceptual_info,
            "step": step,
            "complete": complete,
            "generator": G.state_dict(),
            "predictor": P.state_dict(),
            "discriminator": D.state_dict(),
            "opt_g": st.opt_g.state_dict(),
            "opt_d": st.opt_d.state_dict(),
            "normalizer": st.normalizer.state_dict(),
            "elapsed_s": st.elapsed_s + (time.perf_counter() - t0),
            "torch_rng": torch.get_rng_state(),
        }

    G.train(), P.train(), D.train()
    step = st.start_step
    bar = tqdm(total=phase.steps, initial=step, desc=phase.name, file=sys.stderr, mininterval=tcfg.progress_interval)
    try:
        for batch in loader:
            g_terms, d_terms = stepper(batch)
            step += 1
            bar.update(1)
            if step == 1 or step % tcfg.log_every == 0 or step == phase.steps:
                row = {"step": step, "seconds": round(st.elapsed_s + time.perf_counter() - t0, 3)}
                row.update({f"g_{k}": f"{v.item():.6g}" for k, v in g_terms.items()})
                row.update({f"d_{k}": f"{v.item():.6g}" for k, v in d_terms.items()})
                row.update({f"rho_{n}": f"{r:.6g}" for n, r in zip(G.modality_names, G.rho().tolist())})
                csv_log.write(row)
                bar.set_postfix({k: f"{v.item():.3g}" for k, v in g_terms.items()}, refresh=False)
            if step % tcfg.checkpoint_every == 0 and step < phase.steps:
                save_checkpoint(last_path, snapshot(step, False))
                emit(f"[{phase.name}] step {step}/{phase.steps}: saved {last_path}")
    finally:
        bar.close()
        csv_log.close()

    if step != phase.steps:
        raise RuntimeError(f"[{phase.name}] the data loader stopped at step {step} of {phase.steps}")
    save_checkpoint(final_path, snapshot(step, True))
    if last_path.exists():
        last_path.unlink()
    emit(f"[{phase.name}] done: {phase.steps} steps in {st.elapsed_s + time.perf_counter() - t0:.1f} s -> {final_path}")
    return final_path
