"""One face image + speech → talking-head video (``a2v generate``).

The photo's face is found (dlib HOG + 68-point landmarks), similarity-aligned and cropped exactly
as in preprocessing (:mod:`a2v.face.align`) to the checkpoint's crop size; the audio (any format,
rate or channel count ffmpeg reads) is resampled to 16 kHz mono and turned into per-frame
features on the shared time base; the generator runs autoregressively
(the checkpoint's recipe, :func:`a2v.inference.load_generator`); frames and the input audio are muxed into an mp4 at 25 fps
whose duration equals the audio's to within one frame.
"""

from __future__ import annotations

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
from a2v.io.video import write_video
from a2v.stages.features import audio_config


def read_image(path: str | Path) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8 RGB.

    Raises:
        MediaError: missing or unreadable image.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "file not found")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise MediaError(path, "not an image OpenCV can read")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def face_crop(image: np.ndarray, crop_size: int, source: str | Path = "image") -> np.ndarray:
    """The aligned face crop of a photo, ``(S, S, 3)`` uint8.

    Raises:
        NoFaceError: no face found.
    """
    landmarks, confidence = make_backend("dlib", detect_every=1)(image[None])
    if confidence[0] <= 0 or not np.isfinite(landmarks[0]).all():
        raise NoFaceError(source, "no face found in the image")
    crop, _, _ = align_image(image, landmarks[0], crop_size)
    return crop


def generate_video(image: str | Path, audio: str | Path, checkpoint: str | Path, output: str | Path, device: str = "auto",
                   finetune_steps: int | None = None, log=None) -> Path:
    """Write a talking-head mp4 for ``image`` speaking ``audio``.

    ``finetune_steps`` > 0 first adapts the model to the face (one-shot fine-tuning, e.g.
    OneShotA2V §5; models without it raise ``NotImplementedError``); ``None`` takes the
    checkpoint's ``training.finetune_steps`` (0 for models without the key).

    Raises:
        MediaError: unreadable image or audio, or silent audio.
        NoFaceError: no face in the image.
        NotImplementedError: ``finetune_steps`` for a model without one-shot fine-tuning.
    """
    dev = resolve_device(device)
    model = load_generator(checkpoint, dev)
    reference = face_crop(read_image(image), model.image_size, image)
    cfg = audio_config(model.config["preprocess"])  # the feature parameters the model was trained on
    wave = load_audio(audio, cfg.sample_rate)
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
    return write_video(output, frames, cfg.fps, wave, cfg.sample_rate)
