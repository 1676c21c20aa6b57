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
* one stream from the audio to the encoder: the features are computed ``chunk_frames`` video
  frames at a time (:func:`feature_stream`), the model turns each chunk into frames carrying its
  state across chunks (:meth:`a2v.inference.Generator.generate_stream`), and each frame is pasted
  back and written to ffmpeg — nothing the size of the clip's frames or features is held, so
  memory does not grow with the audio's length but for the waveform (64 kB per second at
  16 kHz) and, for models that read speech-content encoder frames, their whole-clip encoding.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from a2v.audio.features import CHUNK_FRAMES, FEATURE_KEYS, audio_feature_chunks
from a2v.audio.speech_detection import check_speech
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
                   model=None, progress: bool = True, chunk_frames: int = CHUNK_FRAMES) -> Path:
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
        progress: a progress bar on stderr while the frames are generated and written.
        chunk_frames: video frames per chunk of features (:func:`feature_stream`); memory does not
            grow with the audio's length (but for the waveform, 64 kB per second).

    Raises:
        MediaError: unreadable or 0-byte image or audio, silent audio or audio without speech
            (:func:`a2v.audio.speech_detection.check_speech`), an image smaller than the face crop.
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
    check_speech(wave, cfg.sample_rate, audio)
    reference, matrix = align_face(photo, S, image, float(model.config["preprocess"].get("max_face_ratio", 0.5)))
    n_frames = max(1, n_video_frames(len(wave), cfg.sample_rate, cfg.fps))
    if log:
        log(f"{image}: face found and aligned to {S}×{S}; {len(wave) / cfg.sample_rate:.2f} s of speech -> {n_frames} frames")
    if finetune_steps is None:
        finetune_steps = int(getattr(model.recipe.training, "finetune_steps", 0))
    if finetune_steps > 0:
        model.finetune(reference, finetune_steps, dev, log)
    if crop_only:
        height, width, paste = S, S, None
    else:
        height, width = photo.shape[:2]
        paste = PasteBack(photo, matrix, S)
    chunks = feature_stream(model, wave, n_frames, cfg, dev, chunk_frames)
    with VideoStream(output, width, height, cfg.fps) as video, \
            tqdm(total=n_frames, desc=f"frames -> {Path(output).name}", unit="frame", disable=not progress, file=sys.stderr) as bar:
        for block in model.generate_stream(reference, chunks, dev):
            for frame in block:
                video.write(frame if paste is None else paste(frame))
            bar.update(len(block))
        return video.close(audio=audio)


def feature_stream(model, wave: np.ndarray, n_frames: int, cfg, device, chunk: int = CHUNK_FRAMES) -> Iterator[dict[str, np.ndarray]]:
    """The features ``model`` (a :class:`~a2v.inference.Generator`) reads for a waveform, ``chunk``
    video frames at a time, as the features stage computes them for a whole clip: the audio
    features by :func:`a2v.audio.features.audio_feature_chunks`; ``content`` (speech-content
    encoder frames) cut from the clip's encoding (:func:`a2v.audio.content.content_windows`);
    ``content_mel`` (100 rows per second, not per frame) cut from the clip's log-mel, the rows
    ``ceil(t * 100 / fps)`` up to the next chunk's first.

    a2v: the encoder frames (50 per second, 384 numbers each) and the log-mel (100 rows of 80 per
    second) are computed over the whole clip (Whisper reads 30-s pieces; the log-mel's floor is
    the clip's), so they grow with the clip: 77 kB and 16 kB per second of audio (the per-frame
    ``content`` windows cut from the encoding would be 384 kB per second).

    Args:
        wave: ``(N,)`` float32 mono at ``cfg.sample_rate`` (an :class:`~a2v.audio.features.AudioFeatureConfig`).
        n_frames: video frames T. device: where the content encoder runs. chunk: frames per chunk.

    Yields:
        dicts of ``model.feature_keys``, consecutive chunks of the clip.

    Raises (when iterated):
        ValueError: ``chunk < 1``; the feature functions' own (e.g. audio too short for the encoder).
    """
    import math

    if int(chunk) < 1:
        raise ValueError(f"chunk must be >= 1 frame, got {chunk}")
    keys = tuple(model.feature_keys)
    audio_keys = tuple(k for k in keys if k in FEATURE_KEYS)
    pre = model.config["preprocess"]
    encoded = mel = None
    if "content" in keys:  # speech-content features, as the features stage computes them
        from a2v.audio.content import content_encoding, content_windows, load_content_encoder

        encoder = load_content_encoder(pre["content_encoder"], device)
        encoded = content_encoding(wave, cfg.sample_rate, encoder, bool(pre.get("content_pad_to_30s", True)))
        del encoder
    if "content_mel" in keys:  # the log-mel a content encoder inside the model reads
        from a2v.audio.content import MEL_RATE_HZ, clip_log_mel

        mel = clip_log_mel(wave, cfg.sample_rate, cfg.fps, 0, n_frames)
    audio_chunks = audio_feature_chunks(wave, n_frames, cfg, chunk, audio_keys) if audio_keys else None
    for t0 in range(0, n_frames, chunk):
        n = min(chunk, n_frames - t0)
        out = next(audio_chunks) if audio_chunks is not None else {}
        if encoded is not None:
            out["content"] = content_windows(encoded, cfg.fps, n, first_frame=t0)
        if mel is not None:
            stop = len(mel) if t0 + n == n_frames else math.ceil((t0 + n) * MEL_RATE_HZ / cfg.fps)
            out["content_mel"] = mel[math.ceil(t0 * MEL_RATE_HZ / cfg.fps):stop]
        yield {k: out[k] for k in keys}


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
