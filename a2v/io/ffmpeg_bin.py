"""Where the ffmpeg binary comes from.

a2v runs ffmpeg through ffmpeg-python. The binary is, in order: the ``A2V_FFMPEG``
environment variable, the static build inside the ``imageio-ffmpeg`` wheel, ``ffmpeg`` on
``PATH``. The wheel's build needs no root and no network, so a fresh ``.venv`` has one.
"""

from __future__ import annotations

import functools
import os
import shutil

from a2v.errors import A2VError


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg executable.

    Raises:
        A2VError: no ffmpeg found anywhere.
    """
    env = os.environ.get("A2V_FFMPEG")
    if env:
        return env
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        pass
    found = shutil.which("ffmpeg")
    if found:
        return found
    raise A2VError("no ffmpeg: install the imageio-ffmpeg wheel, Debian's ffmpeg, or set A2V_FFMPEG")
