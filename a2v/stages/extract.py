"""Stage 2, extract: decode every clip's audio to mono 16 kHz float32 and check its video.

Output: one HDF5 file per speaker with group ``<clip_id>`` holding ``audio`` ((N,) float32,
16 kHz) and attributes ``n_frames`` (video frames decoded at ``fps``), ``fps``, ``source``.
Video frames are not stored (23 MB a GRID clip): the align stage decodes them again, which
costs about 0.2 s a clip. A clip is skipped, with its cause, when its video or audio is
unreadable, its audio is silent, or audio and video durations differ by more than
``max_av_mismatch_s``.
"""

from __future__ import annotations

from pathlib import Path

from a2v.datasets.record import read_index
from a2v.errors import MediaError
from a2v.io.audio import load_audio
from a2v.io.video import probe_video, read_frames
from a2v.stages.common import Outcomes, atomic_h5, get_logger, progress


def run(config: dict, index: str | Path, speaker: str, out_h5: str | Path, out_tsv: str | Path, log_file=None) -> Path:
    """Extract one speaker's clips. Returns the HDF5 path (written atomically)."""
    log = get_logger("extract", log_file)
    pre = config["preprocess"]
    fps, sr = float(pre["fps"]), int(pre["sample_rate"])
    records = [r for r in read_index(index) if r.speaker == speaker]
    outcomes = Outcomes()
    with atomic_h5(out_h5) as h5:
        h5.attrs.update(fps=fps, sample_rate=sr, speaker=speaker)
        for rec in progress(records, f"extract {speaker}"):
            try:
                info = probe_video(rec.video)
                frames = read_frames(rec.video, fps=fps)
                audio = load_audio(rec.video, sr, min_rms_dbfs=pre["min_audio_rms_dbfs"])
                video_s, audio_s = len(frames) / fps, len(audio) / sr
                if abs(video_s - audio_s) > pre["max_av_mismatch_s"]:
                    raise MediaError(rec.video, f"audio lasts {audio_s:.3f} s but video {video_s:.3f} s")
            except MediaError as exc:
                log.warning("skip %s/%s: %s", speaker, rec.clip_id, exc)
                outcomes.skipped(rec.clip_id, str(exc))
                continue
            grp = h5.create_group(rec.clip_id)
            grp.create_dataset("audio", data=audio, compression="gzip")
            grp.attrs.update(n_frames=len(frames), fps=fps, source_fps=info.fps, source=rec.video)
            outcomes.ok(rec.clip_id, n_frames=len(frames), audio_s=round(len(audio) / sr, 3), source_fps=info.fps)
    outcomes.write(out_tsv)
    log.info("speaker %s: %d of %d clips extracted", speaker, outcomes.n_ok, len(records))
    return out_h5
