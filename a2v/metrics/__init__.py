"""Evaluation metrics of generated talking-face videos. Each has one definition, in its docstring.

* ``ssim`` (↑): mean over frames of per-frame SSIM, RGB, 7x7 uniform window, data range 255
  (``image_quality``; Wang et al., TIP 2004).
* ``psnr`` (↑, dB): ``10 log10(255² / MSE)`` with the MSE over the whole clip; ``inf`` for
  identical clips (``image_quality``).
* ``cpbd`` / ``cpbd_video`` (↑, [0, 1]): no-reference sharpness, the fraction of edges whose
  probability of blur detection is at most 63 %; video = mean over frames of the BT.601 luma
  (``cpbd``; Narvekar & Karam, TIP 2011).
* ``lmd`` (↓, px): mean Euclidean distance of the 20 mouth landmarks (iBUG 49-68) per frame,
  in pixels of a 256 x 256 frame (``lmd``; Chen et al., ECCV 2018; MAN supp. Eq. 7).
* ``detect_blinks`` / ``blinks_per_second``: runs of at least ``min_frames`` frames with eye
  aspect ratio below 0.2; blinks per second of clip (``blinks``; Soukupová & Čech, CVWW 2016).
* ``acd`` (↓): identity distance, dlib ResNet embeddings of generated vs real frame, per frame
  pair, averaged: ACD-C = mean cosine distance, ACD-E = mean Euclidean distance (``acd``).
* ``word_error_rate`` (↓): corpus-level WER, ``(S + D + I) / N`` over all sentences, lowercased,
  whitespace-normalised (``wer``, jiwer); the evaluate stage reports it in % of the lip-read
  transcripts of the pipeline's LipNet (:mod:`a2v.training.lipreader`).
* ``a2v.metrics.sync.lse`` (LSE-D ↓, LSE-C ↑, AV offset in frames): SyncNet distance between 5-frame
  mouth windows and their audio over ±15-frame offsets, min and median − min of the mean-distance
  curve (``sync``; Wav2Lip §4.1). Not re-exported here: it loads torch.

The functions are re-exported here, so ``from a2v.metrics import cpbd`` is the function (the
submodules of the same name stay reachable as ``a2v.metrics.cpbd`` through ``sys.modules`` /
``importlib``). Importing the package loads NumPy, SciPy, scikit-image's metrics and jiwer, but
neither OpenCV nor dlib nor any model file: those load on the first ``identity_embeddings`` call.
"""

from a2v.metrics.acd import acd, acd_from_embeddings, identity_embeddings
from a2v.metrics.blinks import blinks_per_second, detect_blinks
from a2v.metrics.cpbd import cpbd, cpbd_video
from a2v.metrics.image_quality import psnr, ssim
from a2v.metrics.lmd import MOUTH, lmd
from a2v.metrics.wer import word_error_rate

__all__ = [
    "MOUTH",
    "acd",
    "acd_from_embeddings",
    "blinks_per_second",
    "cpbd",
    "cpbd_video",
    "detect_blinks",
    "identity_embeddings",
    "lmd",
    "psnr",
    "ssim",
    "word_error_rate",
]
