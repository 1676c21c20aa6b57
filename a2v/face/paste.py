"""Pasting generated face crops back into the photo they were aligned from (``a2v generate``).

The crop came from the photo by a similarity transform ``M`` (photo pixels → crop pixels,
:func:`a2v.face.align.align_image`); each generated crop goes back by ``M⁻¹``
(``cv2.warpAffine`` with ``WARP_INVERSE_MAP``) and is blended over the photo with a feathered mask,
so the output has the photo's size and everything outside the face is the photo's own pixels.

* Mask: an ellipse over the face region of the aligned template (eyebrows to chin, jaw to jaw:
  :data:`a2v.face.align.TEMPLATE_BOX`), its edge blurred by a Gaussian of ``feather`` × S (a2v: the
  peers' choice of a soft face mask, e.g. Wav2Lip's and SadTalker's paste-back, without their face
  parsers).
* Colour match at the seam: the generated crop is shifted, per RGB channel, by the mean difference
  between the photo's own crop and the generated crop over the mask's soft edge (where
  0.05 < mask < 0.95), so the blended band does not show a step in brightness or tint (a2v: a mean
  shift, cheaper than Poisson blending, ``cv2.seamlessClone``, at every frame).

Work is done inside the bounding box of the mask in the photo, so the cost per frame follows the
face's size, not the photo's.
"""

from __future__ import annotations

import cv2
import numpy as np

from a2v.face.align import TEMPLATE_BOX


def face_mask(crop_size: int, feather: float = 0.06) -> np.ndarray:
    """``(S, S)`` float32 soft face mask in [0, 1] on an aligned crop of side S (see the module docstring).

    Raises:
        ValueError: ``crop_size`` < 8 or ``feather`` outside (0, 0.5).
    """
    S = int(crop_size)
    if S < 8 or not 0 < feather < 0.5:
        raise ValueError(f"need crop_size >= 8 and 0 < feather < 0.5, got {crop_size}, {feather}")
    left, top, right, bottom = (v * S for v in TEMPLATE_BOX)
    mask = np.zeros((S, S), np.float32)
    centre = (int(round((left + right) / 2)), int(round((top + bottom) / 2 + 0.02 * S)))
    axes = (int(round((right - left) / 2)), int(round((bottom - top) / 2 + 0.03 * S)))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1.0, -1)
    sigma = feather * S
    return cv2.GaussianBlur(mask, (0, 0), sigmaX=sigma, sigmaY=sigma)


class PasteBack:
    """Blends generated crops into one photo.

    Args:
        photo: ``(H, W, 3)`` uint8 RGB, the image the face was aligned from.
        matrix: ``(2, 3)`` photo pixels → crop pixels (``align_image``'s third output).
        crop_size: S of the crops to paste (the model's frames are resized to it first when
            they differ).
        feather: mask edge blur, fraction of S.

    Call:
        ``paste(face)`` with ``(s, s, 3)`` uint8 RGB → ``(H, W, 3)`` uint8 RGB.

    Raises:
        ValueError: bad shapes; a face outside the photo.
    """

    def __init__(self, photo: np.ndarray, matrix: np.ndarray, crop_size: int, feather: float = 0.06):
        photo = np.asarray(photo)
        if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
            raise ValueError(f"photo must be (H, W, 3) uint8, got {photo.shape} {photo.dtype}")
        self.photo, self.S = photo, int(crop_size)
        H, W = photo.shape[:2]
        self.matrix = np.asarray(matrix, np.float64).reshape(2, 3)
        mask = face_mask(self.S, feather)
        self.seam = (mask > 0.05) & (mask < 0.95)
        # the mask in photo pixels, to find the box that holds the face
        inv = cv2.invertAffineTransform(self.matrix)
        corners = np.array([[0, 0], [self.S, 0], [0, self.S], [self.S, self.S]], np.float64)
        xy = corners @ inv[:, :2].T + inv[:, 2]
        x0, y0 = np.floor(xy.min(0)).astype(int) - 2
        x1, y1 = np.ceil(xy.max(0)).astype(int) + 2
        self.x0, self.y0, self.x1, self.y1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
        if self.x1 <= self.x0 or self.y1 <= self.y0:
            raise ValueError("the face crop lies outside the photo")
        # crop → box pixels: M⁻¹ shifted by the box origin, applied with WARP_INVERSE_MAP as box → crop
        self.to_crop = self.matrix.copy()
        self.to_crop[:, 2] += self.matrix[:, :2] @ np.array([self.x0, self.y0], np.float64)
        self.size = (self.x1 - self.x0, self.y1 - self.y0)
        alpha = cv2.warpAffine(mask, self.to_crop, self.size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        self.alpha = alpha[..., None].astype(np.float32)
        self.box = photo[self.y0:self.y1, self.x0:self.x1].astype(np.float32)
        # the photo's own crop, the colour reference at the seam
        own = cv2.warpAffine(np.ascontiguousarray(photo), self.matrix, (self.S, self.S), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)
        self.seam_colour = own[self.seam].astype(np.float32).mean(0)

    def __call__(self, face: np.ndarray) -> np.ndarray:
        face = np.asarray(face)
        if face.ndim != 3 or face.shape[2] != 3 or face.dtype != np.uint8 or face.shape[0] != face.shape[1]:
            raise ValueError(f"face must be a square (s, s, 3) uint8 crop, got {face.shape} {face.dtype}")
        if face.shape[0] != self.S:
            face = cv2.resize(face, (self.S, self.S), interpolation=cv2.INTER_LINEAR)
        shift = self.seam_colour - face[self.seam].astype(np.float32).mean(0)
        matched = np.clip(face.astype(np.float32) + shift, 0, 255)
        warped = cv2.warpAffine(matched, self.to_crop, self.size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_REPLICATE)
        out = self.photo.copy()
        out[self.y0:self.y1, self.x0:self.x1] = np.rint(self.alpha * warped + (1 - self.alpha) * self.box).astype(np.uint8)
        return out


__all__ = ["PasteBack", "face_mask"]
