"""Paths of the dlib model files that ship inside the ``face_recognition_models`` package.

The package (CC0 / Boost licensed models by Davis King) carries, among others:
``shape_predictor_68_face_landmarks.dat`` (iBUG 68-point landmarks),
``shape_predictor_5_face_landmarks.dat``, ``mmod_human_face_detector.dat`` and
``dlib_face_recognition_resnet_model_v1.dat`` (128-d identity embedding). They are read from
site-packages, so nothing is downloaded at run time.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from a2v.errors import A2VError

LANDMARKS_68 = "shape_predictor_68_face_landmarks.dat"
LANDMARKS_5 = "shape_predictor_5_face_landmarks.dat"
FACE_RECOGNITION_RESNET = "dlib_face_recognition_resnet_model_v1.dat"


def model_path(name: str) -> Path:
    """Absolute path of one model file of ``face_recognition_models``.

    Raises:
        A2VError: the package is not installed or lacks the file.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise A2VError("face_recognition_models is not installed (pip install face_recognition_models)")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        raise A2VError(f"{path}: dlib model file missing from face_recognition_models")
    return path


@functools.lru_cache(maxsize=None)
def shape_predictor(name: str = LANDMARKS_68):
    """A cached ``dlib.shape_predictor`` for one of the shipped landmark models."""
    import dlib

    return dlib.shape_predictor(str(model_path(name)))


@functools.lru_cache(maxsize=1)
def frontal_face_detector():
    """dlib's HOG + linear SVM frontal face detector (a few ms per 256² frame)."""
    import dlib

    return dlib.get_frontal_face_detector()


@functools.lru_cache(maxsize=1)
def face_recognition_model():
    """dlib's ResNet face-recognition model (128-d embeddings, Euclidean metric)."""
    import dlib

    return dlib.face_recognition_model_v1(str(model_path(FACE_RECOGNITION_RESNET)))
