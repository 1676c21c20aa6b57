"""Stage 3, align: landmarks on every frame, head-pose filter, similarity-aligned face crops.

Per clip: decode frames at ``fps``; 68-point landmarks (``preprocess.landmarks.backend``);
head pose (yaw, pitch, roll in degrees, solvePnP on a 3-D mean face); frames with no face or a
pose outside ``preprocess.pose_limits`` are out; the longest run of in-limit frames is kept
(CRAN §4.2) when it has at least ``preprocess.min_frames`` frames, else the clip is dropped —
logged either way. Kept frames are similarity-aligned and cropped to ``crop_size`` pixels.

Output HDF5 per shard (the speakers of the extract stage's file), group ``<clip_id>``
(``<speaker>/<clip_id>`` in a file of several speakers: :mod:`a2v.features.shard`): ``crops`` (T,S,S,3) uint8, ``landmarks`` (T,68,2)
float32 crop pixels, ``pose`` (T,3) float32 degrees, ``confidence`` (T,) float32; attribute
``first_frame`` = index of crop 0 in the decoded video.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from a2v.errors import A2VError, MultipleFacesError, NoFaceError, PoseRejectedError
from a2v.face.align import align_clip
from a2v.face.landmarks import make_backend
from a2v.face.pose import head_pose, longest_run, within_limits
from a2v.features.shard import file_speakers, group_keys, speaker_attrs, split_key, storage_kwargs
from a2v.io.video import read_frames
from a2v.stages.common import Outcomes, atomic_h5, get_logger, progress


def select_frames(landmarks: np.ndarray, confidence: np.ndarray, pose: np.ndarray, limits: dict, min_frames: int, source: str) -> tuple[int, int]:
    """The half-open frame range kept: the longest run with a face and an in-limit pose.

    Raises:
        NoFaceError: no frame has a face.
        PoseRejectedError: the longest in-limit run is shorter than ``min_frames``.
    """
    has_face = (confidence > 0) & np.isfinite(landmarks).all(axis=(1, 2))
    if not has_face.any():
        raise NoFaceError(source, "no face found in any frame")
    ok = has_face & within_limits(pose, limits)
    start, stop = longest_run(ok)
    if stop - start < min_frames:
        worst = np.nanmax(np.abs(pose), axis=0) if np.isfinite(pose).any() else [np.nan] * 3
        raise PoseRejectedError(
            source,
            f"longest in-limit run is {stop - start} frames < {min_frames} "
            f"(max |yaw|,|pitch|,|roll| = {worst[0]:.1f}, {worst[1]:.1f}, {worst[2]:.1f} deg; "
            f"{int(has_face.sum())}/{len(has_face)} frames with a face)",
        )
    return start, stop


def check_single_face(backend, frames: np.ndarray, max_face_ratio: float, source: str, n_checks: int = 3) -> None:
    """Reject a clip that shows a second face of comparable size.

    The detector runs on ``n_checks`` frames spread over the clip (first, middle, last); the
    landmark backend itself follows the largest face, which is right for a speaker with a small
    face in the background but not for two people side by side.

    Raises:
        MultipleFacesError: on a checked frame, the second-largest face has at least
            ``max_face_ratio`` of the largest face's area (``max_face_ratio <= 0`` disables).
    """
    if max_face_ratio <= 0:
        return
    for t in np.unique(np.linspace(0, len(frames) - 1, n_checks).round().astype(int)):
        faces = backend.faces(frames[t])
        if len(faces) < 2:
            continue
        areas = [float((b[2] - b[0]) * (b[3] - b[1])) for b, _ in faces[:2]]
        if areas[1] >= max_face_ratio * areas[0]:
            boxes = "; ".join(f"({b[0]:.0f},{b[1]:.0f})-({b[2]:.0f},{b[3]:.0f})" for b, _ in faces)
            raise MultipleFacesError(source, (
                f"{len(faces)} faces in frame {t} (boxes {boxes}; the second has {areas[1] / areas[0]:.2f} of the "
                f"largest's area >= max_face_ratio {max_face_ratio}): cannot tell which one speaks"))


def run(config: dict, extract_h5: str | Path, speaker: str, out_h5: str | Path, out_tsv: str | Path, log_file=None) -> Path:
    """Align one shard's extracted clips. Returns the HDF5 path (written atomically).

    Args:
        speaker: the shard's name, for the log; its speakers are those of ``extract_h5``.
    """
    log = get_logger("align", log_file)
    pre = config["preprocess"]
    lm_cfg = dict(pre["landmarks"])
    backend = make_backend(lm_cfg.pop("backend"), **lm_cfg)
    outcomes = Outcomes()
    with h5py.File(extract_h5, "r") as src, atomic_h5(out_h5) as dst:
        speakers = file_speakers(src.attrs) if ("speaker" in src.attrs or "speakers" in src.attrs) else [speaker]
        multi = len(speakers) > 1
        dst.attrs.update(crop_size=pre["crop_size"], fps=pre["fps"], **speaker_attrs(speakers))
        for key in progress(group_keys(src, speakers), f"align {speaker}"):
            clip_speaker, clip_id = split_key(speakers, key)
            row_speaker = clip_speaker if multi else None
            source = src[key].attrs["source"]
            try:
                frames = read_frames(source, fps=float(pre["fps"]))
                check_single_face(backend, frames, pre["max_face_ratio"], source)
                landmarks, confidence = backend(frames)
                pose = head_pose(landmarks, frames.shape[1:3])
                start, stop = select_frames(landmarks, confidence, pose, pre["pose_limits"], pre["min_frames"], source)
                crops, lm_crop, _ = align_clip(frames[start:stop], landmarks[start:stop], pre["crop_size"], pre["smooth_window"])
            except A2VError as exc:
                log.warning("skip %s/%s: %s", clip_speaker, clip_id, exc)
                outcomes.skipped(clip_id, str(exc), kind=type(exc).__name__, speaker=row_speaker)
                continue
            if stop - start < len(frames):
                log.info("%s/%s: kept frames [%d, %d) of %d by the pose/face filter", clip_speaker, clip_id, start, stop, len(frames))
            grp = dst.create_group(key)
            # The shard's storage for frames, so the features stage copies the compressed chunks.
            grp.create_dataset("crops", data=crops, **storage_kwargs("frames", crops.shape))
            grp.create_dataset("landmarks", data=lm_crop.astype(np.float32))
            grp.create_dataset("pose", data=pose[start:stop].astype(np.float32))
            grp.create_dataset("confidence", data=confidence[start:stop].astype(np.float32))
            grp.attrs.update(first_frame=start, source=source, n_source_frames=len(frames))
            yaw, pitch, roll = np.nanmedian(np.abs(pose[start:stop]), axis=0)
            outcomes.ok(
                clip_id, speaker=row_speaker, frames_total=len(frames), frames_kept=stop - start,
                median_abs_yaw=round(float(yaw), 2), median_abs_pitch=round(float(pitch), 2), median_abs_roll=round(float(roll), 2),
            )
    outcomes.write(out_tsv)
    log.info("%s %s: %d of %d clips aligned", "shard" if multi else "speaker", speaker, outcomes.n_ok, len(outcomes.rows))
    return out_h5
