"""Stage 2, extract: decode every clip's audio to mono 16 kHz float32 and check its video.

Output: one HDF5 file per shard (one speaker, or the several speakers that
:func:`a2v.datasets.source.speaker_shards` groups) with group ``<clip_id>`` (``<speaker>/<clip_id>``
in a file of several speakers, root attribute ``speakers``: :mod:`a2v.features.shard`) holding ``audio`` ((N,) float32,
16 kHz) and attributes ``n_frames`` (video frames decoded at ``fps``), ``fps``, ``source``.
Video frames are not stored (23 MB a GRID clip): every frame is decoded here at 16×16 pixels
(0.5 ms a frame) to count them and to catch damaged streams, and in full by the align stage.
Audio at any rate and channel count is resampled to 16 kHz and down-mixed (ffmpeg); the source
rate and channels are recorded. A clip is skipped, with its cause, when its video or audio is
unreadable, truncated or corrupt, it has no audio stream, its audio is silent, its audio was
sampled below ``min_source_sample_rate`` (e.g. 8 kHz telephone audio: no content above 4 kHz),
or audio and video durations differ by more than ``max_av_mismatch_s``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from a2v.datasets.record import read_index
from a2v.datasets.source import shard_speakers
from a2v.errors import MediaError
from a2v.features.shard import clip_key, speaker_attrs
from a2v.io.audio import load_audio, probe_audio
from a2v.io.video import probe_video, read_frames
from a2v.stages.common import Outcomes, atomic_h5, get_logger, progress


def run(config: dict, index: str | Path, speaker: str | Sequence[str], out_h5: str | Path, out_tsv: str | Path,
        log_file=None) -> Path:
    """Extract one shard's clips. Returns the HDF5 path (written atomically).

    Args:
        speaker: a shard name of the index's dataset (:func:`a2v.datasets.source.speaker_shards`:
            with ``speakers_per_shard`` 1, the speaker id), resolved to its speakers through
            ``config``; or the list of speakers itself.
    """
    log = get_logger("extract", log_file)
    pre = config["preprocess"]
    fps, sr = float(pre["fps"]), int(pre["sample_rate"])
    records = read_index(index)
    if isinstance(speaker, str):
        datasets = {r.dataset for r in records}
        dataset_cfg = config.get("datasets", {}).get(datasets.pop(), {}) if len(datasets) == 1 else {}
        speakers = shard_speakers(dataset_cfg, speaker)
    else:
        speakers, speaker = list(speaker), ", ".join(speaker)
    wanted = set(speakers)
    records = [r for r in records if r.speaker in wanted]  # in index order: by speaker, then clip
    multi = len(speakers) > 1
    outcomes = Outcomes()
    with atomic_h5(out_h5) as h5:
        h5.attrs.update(fps=fps, sample_rate=sr, **speaker_attrs(speakers))
        for rec in progress(records, f"extract {speaker}"):
            audio_file = rec.audio or rec.video
            try:
                info = probe_video(rec.video)
                # Decode every frame (a damaged stream makes the decoder complain) but scaled to
                # 16x16, which costs a fifth of a full-size decode; align decodes them in full.
                n_frames = len(read_frames(rec.video, fps=fps, size=(16, 16)))
                src_audio = probe_audio(audio_file)
                if src_audio.sample_rate < pre["min_source_sample_rate"]:
                    raise MediaError(audio_file, (
                        f"audio sampled at {src_audio.sample_rate} Hz, below min_source_sample_rate "
                        f"{pre['min_source_sample_rate']} Hz: it has nothing above {src_audio.sample_rate // 2} Hz, "
                        "where the mel and MFCC features expect speech energy"))
                audio = load_audio(audio_file, sr, min_rms_dbfs=pre["min_audio_rms_dbfs"])
                video_s, audio_s = n_frames / fps, len(audio) / sr
                if abs(video_s - audio_s) > pre["max_av_mismatch_s"]:
                    raise MediaError(rec.video, f"audio lasts {audio_s:.3f} s but video {video_s:.3f} s")
            except MediaError as exc:
                log.warning("skip %s/%s: %s", rec.speaker, rec.clip_id, exc)
                outcomes.skipped(rec.clip_id, str(exc), kind=type(exc).__name__, speaker=rec.speaker if multi else None)
                continue
            grp = h5.create_group(clip_key(speakers, rec.speaker, rec.clip_id))
            grp.create_dataset("audio", data=audio, compression="gzip")
            grp.attrs.update(n_frames=n_frames, fps=fps, source_fps=info.fps, source=rec.video, audio_source=audio_file,
                             source_sample_rate=src_audio.sample_rate, source_channels=src_audio.channels)
            outcomes.ok(rec.clip_id, speaker=rec.speaker if multi else None, n_frames=n_frames, audio_s=round(len(audio) / sr, 3), source_fps=info.fps,
                        source_sample_rate=src_audio.sample_rate, source_channels=src_audio.channels)
    outcomes.write(out_tsv)
    log.info("%s %s: %d of %d clips extracted", "shard" if multi else "speaker", speaker, outcomes.n_ok, len(records))
    return out_h5
