"""One face image + speech → talking-head video (``a2v generate``).

The photo's face is found (dlib HOG + 68-point landmarks), similarity-aligned and cropped exactly
as in preprocessing (:mod:`a2v.face.align`) to the model's frame size; the audio (any format, rate
or channel count ffmpeg reads) is resampled to 16 kHz mono for the per-frame features on the shared
time base; the checkpoint's recipe generates the face crops (:func:`a2v.inference.load_generator`).

Output (an mp4 at the model's fps, 25):

* the whole photo at its own size, each generated face warped back into it with a feathered,
  colour-matched mask (:mod:`a2v.face.paste`); ``crop_only`` keeps the aligned crops instead;
* the input audio as given — its sample rate and channels — trimmed or padded to the video's
  duration exactly (:class:`a2v.io.video.VideoStream`);
* frames streamed to the encoder one at a time, so the pasted full-size frames are never all in
  memory (the model's crops are: T × S² × 3 bytes, 37 MB for 2 minutes at 64²).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from a2v.audio.features import audio_features
from a2v.audio.timebase import n_video_frames
from a2v.device import resolve_device
from a2v.errors import MediaError, NoFaceError
from a2v.face.align import align_image
from a2v.face.landmarks import make_backend
from a2v.inference import load_generator
from a2v.io.audio import load_audio
from a2v.stages.features import audio_config


def read_image(path: str | Path) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8 RGB.

    Raises:
        MediaError: missing, empty (0 bytes) or unreadable image.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "file not found")
    if path.stat().st_size == 0:
        raise MediaError(path, "file is empty (0 bytes)")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise MediaError(path, "not an image OpenCV can read")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def face_crop(image: np.ndarray, crop_size: int, source: str | Path = "image") -> np.ndarray:
    """The aligned face crop of a photo, ``(S, S, 3)`` uint8.

    Raises:
        NoFaceError: no face found.
    """
    return align_face(image, crop_size, source)[0]


def align_face(image: np.ndarray, crop_size: int, source: str | Path = "image",
               max_face_ratio: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """The aligned face crop of a photo, ``(S, S, 3)`` uint8, and its ``(2, 3)`` float32 matrix
    (photo pixels → crop pixels).

    Args:
        max_face_ratio: a second face with at least this fraction of the largest face's area makes
            the photo ambiguous, as in preprocessing (``preprocess.max_face_ratio``; <= 0 disables).

    Raises:
        NoFaceError: no face found.
        MultipleFacesError: two faces of comparable size.
    """
    from a2v.stages.align import check_single_face

    backend = make_backend("dlib", detect_every=1)
    check_single_face(backend, image[None], max_face_ratio, str(source), n_checks=1)
    landmarks, confidence = backend(image[None])
    if confidence[0] <= 0 or not np.isfinite(landmarks[0]).all():
        raise NoFaceError(source, "no face found in the image")
    crop, _, matrix = align_image(image, landmarks[0], crop_size)
    return crop, matrix


def generate_video(image: str | Path, audio: str | Path, checkpoint: str | Path | None, output: str | Path,
                   device: str = "auto", finetune_steps: int | None = None, log=None, crop_only: bool = False,
                   model=None, progress: bool = True) -> Path:
    """Write a talking-head mp4 for ``image`` speaking ``audio`` (see the module docstring).

    Args:
        image: the photo (any format OpenCV reads); audio: any file ffmpeg reads.
        checkpoint: a phase's ``checkpoint.pt`` (ignored when ``model`` is given).
        output: the ``.mp4`` to write (atomically: nothing under this name on error).
        finetune_steps: > 0 first adapts the model to the face (one-shot fine-tuning, e.g.
            OneShotA2V §5; models without it raise ``NotImplementedError``); ``None`` takes the
            checkpoint's ``training.finetune_steps`` (0 for models without the key).
        crop_only: write the aligned S×S crops, not the whole photo.
        model: an already loaded :class:`~a2v.inference.Generator` (``a2v generate --batch``).
        progress: a progress bar on stderr while the frames are written.

    Raises:
        MediaError: unreadable or 0-byte image or audio, silent audio, an image smaller than the face crop.
        NoFaceError: no face in the image. MultipleFacesError: two faces of comparable size.
        NotImplementedError: ``finetune_steps`` for a model without one-shot fine-tuning.
    """
    from tqdm import tqdm

    from a2v.face.paste import PasteBack
    from a2v.io.video import VideoStream

    dev = resolve_device(device)
    model = model or load_generator(checkpoint, dev)
    photo = read_image(image)
    S = model.image_size
    if min(photo.shape[:2]) < S:
        raise MediaError(image, f"image is {photo.shape[1]}×{photo.shape[0]} pixels, smaller than the model's {S}×{S} face crop")
    cfg = audio_config(model.config["preprocess"])  # the feature parameters the model was trained on
    wave = load_audio(audio, cfg.sample_rate)
    reference, matrix = align_face(photo, S, image, float(model.config["preprocess"].get("max_face_ratio", 0.5)))
    if log:
        log(f"{image}: face found and aligned to {S}×{S}; {len(wave) / cfg.sample_rate:.2f} s of speech -> "
            f"{max(1, n_video_frames(len(wave), cfg.sample_rate, cfg.fps))} frames")
    n_frames = max(1, n_video_frames(len(wave), cfg.sample_rate, cfg.fps))
    feats = audio_features(wave, n_frames, cfg)
    if "content" in model.feature_keys:  # speech-content features, as the features stage computes them
        from a2v.audio.content import content_features, load_content_encoder

        pre = model.config["preprocess"]
        encoder = load_content_encoder(pre["content_encoder"], dev)
        feats["content"] = content_features(wave, cfg.sample_rate, cfg.fps, encoder, n_frames=n_frames,
                                            pad_to_30s=bool(pre.get("content_pad_to_30s", True)))
    if "content_mel" in model.feature_keys:  # the log-mel a content encoder inside the model reads
        from a2v.audio.content import clip_log_mel

        feats["content_mel"] = clip_log_mel(wave, cfg.sample_rate, cfg.fps, 0, n_frames)
    if finetune_steps is None:
        finetune_steps = int(getattr(model.recipe.training, "finetune_steps", 0))
    if finetune_steps > 0:
        model.finetune(reference, finetune_steps, dev, log)
    frames = model.generate(reference, {k: feats[k] for k in model.feature_keys}, dev)
    if crop_only:
        height, width, paste = S, S, None
    else:
        height, width = photo.shape[:2]
        paste = PasteBack(photo, matrix, S)
    with VideoStream(output, width, height, cfg.fps) as video:
        for frame in tqdm(frames, desc=f"frames -> {Path(output).name}", unit="frame", disable=not progress, file=sys.stderr):
            video.write(frame if paste is None else paste(frame))
        return video.close(audio=audio)


def read_jobs(path: str | Path) -> list[dict[str, str]]:
    """The lines of a ``--batch`` file: CSV with a header ``image,audio,output`` (relative paths
    are relative to the file's folder).

    Raises:
        MediaError: missing file, other columns, or an empty list.
    """
    import csv

    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "batch file not found")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or set(rows[0]) != {"image", "audio", "output"}:
        raise MediaError(path, "a batch file is CSV with the header image,audio,output and one line per video")
    return [{k: str((path.parent / v.strip()) if not Path(v.strip()).is_absolute() else v.strip()) for k, v in r.items()} for r in rows]


@contextmanager
def weights_restored(model):
    """Give back a loaded :class:`~a2v.inference.Generator`'s network weights as they were on entry,
    however the block ends (one-shot fine-tuning on one face must not carry over to the next)."""
    weights = {k: {n: t.detach().clone() for n, t in net.state_dict().items()} for k, net in model.networks.items()}
    try:
        yield model
    finally:
        for k, net in model.networks.items():
            net.load_state_dict(weights[k])


def generate_batch(jobs: str | Path, checkpoint: str | Path, device: str = "auto", finetune_steps: int | None = None,
                   crop_only: bool = False, log=None) -> list[tuple[str, str]]:
    """Every line of a ``--batch`` file with one model load; a line that fails (no face, silent
    audio…) is reported and the others go on. Returns ``(output or "", error or "")`` per line.

    Raises:
        MediaError: a bad batch file.
    """
    from a2v.errors import A2VError

    rows = read_jobs(jobs)
    dev = resolve_device(device)
    model = load_generator(checkpoint, dev)
    results = []
    for i, row in enumerate(rows, 1):
        try:
            with weights_restored(model):  # one-shot fine-tuning must not carry over to the next face
                out = generate_video(row["image"], row["audio"], None, row["output"], dev, finetune_steps, log, crop_only, model)
            results.append((str(out), ""))
        except (A2VError, NotImplementedError) as exc:
            results.append(("", str(exc)))
        if log:
            log(f"[{i}/{len(rows)}] {results[-1][0] or 'failed: ' + results[-1][1]}")
    return results
