"""Stage 4, features: every per-frame feature of a shard's aligned clips into one HDF5 shard.

A shard holds one speaker's clips, or several speakers' (``datasets.<name>.speakers_per_shard``,
:func:`a2v.datasets.source.speaker_shards`): those of the align stage's file, each clip under its
own speaker (:mod:`a2v.features.shard`).

For each aligned clip: audio features on the clip's full audio (:mod:`a2v.audio.features`)
sliced to the kept frame range, Farnebäck flow between consecutive crops, 15 keypoint heatmaps
(96×96) and eye aspect ratios from the crop landmarks, the words, their phonemes and, where the
corpus aligns them (GRID, Lombard GRID), their frame spans. The shard
schema is :mod:`a2v.features.shard`.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from a2v.audio.features import AudioFeatureConfig, audio_features
from a2v.datasets.word_timing import word_frames, word_times
from a2v.datasets.record import read_index
from a2v.errors import A2VError
from a2v.face.ear import eye_aspect_ratio
from a2v.face.heatmaps import keypoint_heatmaps, keypoints15
from a2v.features.flow import FarnebackConfig, farneback_flow
from a2v.features.shard import ShardWriter, file_speakers, group_keys, heatmaps_to_uint8, speaker_attrs, split_key
from a2v.selection.phonemes import words_to_phonemes
from a2v.stages.common import Outcomes, get_logger, progress


def audio_config(pre: dict) -> AudioFeatureConfig:
    """The :class:`AudioFeatureConfig` of the ``preprocess`` config section."""
    return AudioFeatureConfig(sample_rate=int(pre["sample_rate"]), fps=float(pre["fps"]), **pre.get("audio", {}))


def clip_features(crops: np.ndarray, landmarks: np.ndarray, audio: np.ndarray, first_frame: int, n_source_frames: int, pre: dict) -> dict[str, np.ndarray]:
    """The shard datasets of one aligned clip computed from its crops, landmarks and audio.

    Args:
        crops: ``(T, S, S, 3)`` uint8 aligned crops (frames ``first_frame`` … of the source).
        landmarks: ``(T, 68, 2)`` crop pixels.
        audio: ``(N,)`` float32 16 kHz audio of the whole source clip.
        first_frame: index of crop 0 in the source video (at ``pre["fps"]``).
        n_source_frames: frames of the whole source video.
        pre: the ``preprocess`` config section.

    Returns:
        every dataset of :data:`a2v.features.shard.DATASETS` except ``frames``, ``pose`` and the
        optional ``content`` / ``content_mel``.
    """
    t = len(crops)
    feats = audio_features(audio, n_source_frames, audio_config(pre))
    feats = {k: v[first_frame:first_frame + t] for k, v in feats.items()}
    kp = keypoints15(landmarks)
    return {
        "landmarks": landmarks.astype(np.float32),
        "ear": eye_aspect_ratio(landmarks).astype(np.float32),
        "flow": farneback_flow(crops, FarnebackConfig(**pre["flow"])),
        "heatmaps": heatmaps_to_uint8(keypoint_heatmaps(kp, crops.shape[1], pre["heatmap_size"], pre["heatmap_sigma"])),
        **feats,
    }


def clip_content(encoder, audio: np.ndarray, first_frame: int, n_frames: int, n_source_frames: int, pre: dict) -> np.ndarray:
    """Speech-content features of one aligned clip (:func:`a2v.audio.content.content_features` over
    the whole source clip, then cut to the clip's frames).

    Args:
        encoder: a loaded :class:`a2v.audio.content.WhisperEncoder`.
        audio: ``(N,)`` float32 16 kHz audio of the whole source clip.
        first_frame, n_frames: the clip's frames in the source video; n_source_frames: all of them.

    Returns:
        ``(n_frames, 10, D)`` float16.
    """
    from a2v.audio.content import content_features

    feats = content_features(audio, int(pre["sample_rate"]), float(pre["fps"]), encoder, n_frames=n_source_frames,
                             pad_to_30s=bool(pre.get("content_pad_to_30s", True)))
    return feats[first_frame:first_frame + n_frames].astype(np.float16)


def run(config: dict, dataset: str, speaker: str, index: str | Path, extract_h5: str | Path, aligned_h5: str | Path,
        out_shard: str | Path, out_tsv: str | Path, log_file=None) -> Path:
    """Write the shard. Returns its path (written atomically).

    Args:
        speaker: the shard's name, for the log; its speakers are those of ``aligned_h5``.

    Raises:
        A2VError: no clip of the shard survived alignment.
    """
    log = get_logger("features", log_file)
    pre = config["preprocess"]
    with h5py.File(aligned_h5, "r") as ali:
        speakers = file_speakers(ali.attrs) if ("speaker" in ali.attrs or "speakers" in ali.attrs) else [speaker]
    multi = len(speakers) > 1
    wanted = set(speakers)
    records = {(r.speaker, r.clip_id): r for r in read_index(index) if r.speaker in wanted}
    outcomes = Outcomes()
    attrs = dict(dataset=dataset, **speaker_attrs(speakers), fps=float(pre["fps"]), sample_rate=int(pre["sample_rate"]),
                 crop_size=int(pre["crop_size"]), content_encoder=str(pre.get("content_encoder") or ""))
    encoder = None
    if pre.get("content_encoder"):
        from a2v.audio.content import load_content_encoder

        encoder = load_content_encoder(pre["content_encoder"])
        log.info("content features: %s (%d-dim at 50 Hz, %s)", pre["content_encoder"], encoder.dim,
                 "30-s padded" if pre.get("content_pad_to_30s", True) else "sliced positions")
    with h5py.File(extract_h5, "r") as ext, h5py.File(aligned_h5, "r") as ali, ShardWriter(out_shard, attrs) as shard:
        keys = group_keys(ali, speakers)
        if not keys:
            raise A2VError(f"{aligned_h5}: no aligned clip for {'shard' if multi else 'speaker'} {speaker}; see the align summary")
        for key in progress(keys, f"features {speaker}"):
            clip_speaker, clip_id = split_key(speakers, key)
            row_speaker = clip_speaker if multi else None
            grp = ali[key]
            try:
                arrays = clip_features(
                    grp["crops"][:], grp["landmarks"][:], ext[key]["audio"][:],
                    int(grp.attrs["first_frame"]), int(grp.attrs["n_source_frames"]), pre,
                )
                arrays["pose"] = grp["pose"][:]
                if encoder is not None:
                    arrays["content"] = clip_content(encoder, ext[key]["audio"][:], int(grp.attrs["first_frame"]),
                                                     len(arrays["pose"]), int(grp.attrs["n_source_frames"]), pre)
                if pre.get("content_mel"):
                    from a2v.audio.content import clip_log_mel

                    arrays["content_mel"] = clip_log_mel(ext[key]["audio"][:], int(pre["sample_rate"]), float(pre["fps"]),
                                                         int(grp.attrs["first_frame"]), len(arrays["pose"]))
            except (A2VError, ValueError) as exc:
                log.warning("skip %s/%s: %s", clip_speaker, clip_id, exc)
                outcomes.skipped(clip_id, str(exc), kind=type(exc).__name__, speaker=row_speaker)
                continue
            record = records.get((clip_speaker, clip_id))
            clip_words = list(record.words) if record else []
            n_frames = len(arrays["pose"])
            first_frame = int(grp.attrs["first_frame"])
            spans = [list(s) for s in word_frames(word_times(record), float(pre["fps"]), first_frame, n_frames)] if record else []
            shard.add_clip(key, arrays, {
                "words": clip_words, "phonemes": words_to_phonemes(clip_words), "word_frames": spans,
                "source": grp.attrs["source"], "first_frame": first_frame, "n_frames": n_frames,
            }, copy_from={"frames": grp["crops"]})
            outcomes.ok(clip_id, speaker=row_speaker, n_frames=n_frames, voiced_fraction=round(float((arrays["f0"] > 0).mean()), 3))
    outcomes.write(out_tsv)
    log.info("%s %s: %d clips in shard %s", "shard" if multi else "speaker", speaker, outcomes.n_ok, out_shard)
    return Path(out_shard)
