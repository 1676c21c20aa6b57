"""ACD: Average Content Distance, the identity distance between generated and real frames (↓).

Identity representation: dlib's 128-d face-recognition ResNet (``dlib_face_recognition_resnet_
model_v1``, shipped by ``face_recognition_models``; King, "Dlib-ml", JMLR 2009), whose embeddings
are compared by Euclidean distance (dlib's same-person decision threshold is 0.6).

ACD comes from MoCoGAN (Tulyakov et al., CVPR 2018); OneShotA2V and MAN report it as the cosine
(ACD-C) and Euclidean (ACD-E) distances between the identity representations of generated and
real frames. Here, for videos of ``T`` frames:

* ``ACD-C = mean_t (1 - cos(e_real[t], e_fake[t]))``
* ``ACD-E = mean_t || e_real[t] - e_fake[t] ||_2``

i.e. per frame pair (frame ``t`` of the generated video against frame ``t`` of the real one),
then averaged over frames. Typical dlib Euclidean distances: same person about 0.3, different
people about 0.7-0.9.
"""

from __future__ import annotations

import numpy as np

from a2v.face import dlib_models

MIN_SIDE = 150  # dlib's face chip is 150 x 150: smaller crops are upscaled to this first

FaceBox = tuple[float, float, float, float]


def _check_video(frames: np.ndarray, name: str = "frames") -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"{name} must be (T, H, W, 3) uint8 with T >= 1, got {frames.shape} {frames.dtype}")
    return frames


def identity_embeddings(frames: np.ndarray, face_box: FaceBox | None = None) -> np.ndarray:
    """dlib ResNet identity embeddings of aligned face crops, one per frame.

    No face detection is run: the face rectangle is known. By default it is the whole frame,
    which is right only for *tight* crops framed like a dlib detector box (brows to chin, ear
    to ear filling the frame). For looser aligned crops pass ``face_box``, the rectangle as
    fractions of the frame ``(left, top, right, bottom)`` in [0, 1], the same for every frame
    (an aligned crop puts the face at the same place). With a wrong rectangle the 5-point
    predictor lands on hair or forehead and the embedding loses its identity: on 256 x 256 GRID
    crops with the face in the middle half (75-frame clips, ACD-E), the whole-frame rectangle
    put two s1 clips 0.31-0.44 apart and s1 from s2 / s31 only 0.44-0.57, against 0.19-0.27
    and 0.88-0.94 with the face's box.

    In that rectangle dlib's 5-point shape predictor (``shape_predictor_5_face_landmarks``)
    places eye corners and nose, and ``compute_face_descriptor(img, shape)`` (no jitter,
    padding 0.25) aligns the 150 x 150 chip and embeds it. Crops whose smaller side is below
    150 px are first upscaled (bicubic, aspect kept) so that the smaller side is 150 px.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB face crops.
        face_box: ``(left, top, right, bottom)`` fractions of width and height, or ``None``
            for the whole frame.

    Returns:
        ``(T, 128)`` float32 embeddings (unit-free; compare with Euclidean distance).

    Raises:
        ValueError: not ``(T, H, W, 3)`` uint8, or a box outside [0, 1] or empty.
    """
    import cv2
    import dlib

    frames = _check_video(frames)
    height, width = frames.shape[1:3]
    scale = MIN_SIDE / min(height, width)
    if scale > 1.0:
        size = (round(width * scale), round(height * scale))
        frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_CUBIC) for f in frames])
        height, width = frames.shape[1:3]
    left, top, right, bottom = _check_box(face_box)
    x0, x1 = round(left * (width - 1)), round(right * (width - 1))
    y0, y1 = round(top * (height - 1)), round(bottom * (height - 1))
    rect = dlib.rectangle(x0, y0, x1, y1)
    predictor = dlib_models.shape_predictor(dlib_models.LANDMARKS_5)
    model = dlib_models.face_recognition_model()
    images, shapes = [], []
    for frame in frames:
        image = np.ascontiguousarray(frame)
        images.append(image)
        detections = dlib.full_object_detections()
        detections.append(predictor(image, rect))
        shapes.append(detections)
    descriptors = model.compute_face_descriptor(images, shapes)
    return np.array([np.array(d[0]) for d in descriptors], dtype=np.float32)


def _check_box(face_box: FaceBox | None) -> FaceBox:
    if face_box is None:
        return (0.0, 0.0, 1.0, 1.0)
    left, top, right, bottom = (float(v) for v in face_box)
    if not (0.0 <= left < right <= 1.0 and 0.0 <= top < bottom <= 1.0):
        raise ValueError(f"face_box must be (left, top, right, bottom) fractions in [0, 1], got {face_box}")
    return (left, top, right, bottom)


def acd_from_embeddings(real_embeddings: np.ndarray, fake_embeddings: np.ndarray) -> dict[str, float]:
    """ACD-C and ACD-E of paired ``(T, D)`` embeddings (see the module docstring).

    Returns:
        ``{"acd_c": mean cosine distance, "acd_e": mean Euclidean distance}``.

    Raises:
        ValueError: shapes differ or are not ``(T, D)`` with ``T >= 1``.
    """
    real = np.asarray(real_embeddings, dtype=np.float64)
    fake = np.asarray(fake_embeddings, dtype=np.float64)
    if real.shape != fake.shape or real.ndim != 2 or len(real) == 0:
        raise ValueError(f"embeddings must both be (T, D) with T >= 1, got {real.shape} and {fake.shape}")
    euclidean = np.linalg.norm(real - fake, axis=1)
    norms = np.linalg.norm(real, axis=1) * np.linalg.norm(fake, axis=1)
    cosine = 1.0 - np.einsum("td,td->t", real, fake) / norms
    return {"acd_c": float(np.clip(cosine, 0.0, 2.0).mean()), "acd_e": float(euclidean.mean())}


def acd(real_frames: np.ndarray, fake_frames: np.ndarray, face_box: FaceBox | None = None) -> dict[str, float]:
    """Identity distance of a generated video to the real one, per frame pair, averaged (↓).

    Args:
        real_frames, fake_frames: ``(T, H, W, 3)`` uint8 RGB aligned face crops, same ``T``
            (their sizes may differ).
        face_box: the face's rectangle in both, as fractions of the frame (see
            :func:`identity_embeddings`); ``None`` for the whole frame (tight crops).

    Returns:
        ``{"acd_c": mean_t (1 - cos), "acd_e": mean_t Euclidean}`` over the ``T`` pairs of dlib
        embeddings; both 0 for identical videos.

    Raises:
        ValueError: frame counts differ, or not ``(T, H, W, 3)`` uint8.
    """
    real_frames = _check_video(real_frames, "real_frames")
    fake_frames = _check_video(fake_frames, "fake_frames")
    if len(real_frames) != len(fake_frames):
        raise ValueError(f"frame counts differ: {len(real_frames)} real vs {len(fake_frames)} fake")
    real = identity_embeddings(real_frames, face_box)
    fake = identity_embeddings(fake_frames, face_box)
    return acd_from_embeddings(real, fake)
