"""Video decoding, probing and writing (ffmpeg-python).

Frames are RGB ``uint8`` arrays of shape ``(T, H, W, 3)``. Decoding resamples to a fixed
frame rate (25 fps by default, the rate of every corpus the papers use), so that frame
``t`` covers ``[t / fps, (t + 1) / fps)`` seconds whatever the source's rate (variable-frame-rate
sources included).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
import imageio_ffmpeg
import numpy as np

from a2v.errors import MediaError
from a2v.io.ffmpeg_bin import ffmpeg_exe


@dataclass(frozen=True)
class VideoInfo:
    """What ffmpeg reports of a video file.

    Attributes:
        width, height: frame size in pixels.
        fps: the stream's nominal frame rate (frames per second).
        duration_s: container duration in seconds (0.0 when unknown).
        has_audio: whether the file carries an audio stream.
    """

    width: int
    height: int
    fps: float
    duration_s: float
    has_audio: bool


def probe_video(path: str | Path) -> VideoInfo:
    """Read a video's size, rate, duration and whether it has audio.

    Raises:
        MediaError: the file is missing or ffmpeg cannot read a video stream from it.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "file not found")
    try:
        gen = imageio_ffmpeg.read_frames(str(path))
        meta = next(gen)
        gen.close()
    except (RuntimeError, OSError, StopIteration) as exc:
        raise MediaError(path, f"ffmpeg cannot read a video stream ({_last_line(exc)})") from exc
    width, height = meta["size"]
    return VideoInfo(
        width=int(width),
        height=int(height),
        fps=float(meta.get("fps") or 0.0),
        duration_s=float(meta.get("duration") or 0.0),
        has_audio=bool(meta.get("audio_codec")),
    )


def read_frames(path: str | Path, fps: float = 25.0, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode every frame of a video at a fixed frame rate.

    Args:
        path: video file (any container/codec ffmpeg reads).
        fps: output frame rate; ffmpeg duplicates or drops frames to reach it.
        size: optional ``(width, height)`` to scale to, in pixels.

    Returns:
        ``(T, H, W, 3)`` uint8 RGB frames.

    Raises:
        MediaError: unreadable, truncated or corrupt file (any decoder error), or no frame decoded.
    """
    path = Path(path)
    info = probe_video(path)
    width, height = size or (info.width, info.height)
    stream = ffmpeg.input(str(path)).video.filter("fps", fps=fps)
    if size is not None:
        stream = stream.filter("scale", width, height)
    try:
        out, err = (
            stream.output("pipe:", format="rawvideo", pix_fmt="rgb24")
            .global_args("-nostdin", "-v", "error")
            .run(cmd=ffmpeg_exe(), capture_stdout=True, capture_stderr=True)
        )
    except ffmpeg.Error as exc:
        raise MediaError(path, f"ffmpeg failed to decode the video ({_last_line(exc.stderr)})") from exc
    frame_bytes = width * height * 3
    n = len(out) // frame_bytes
    if n == 0:
        raise MediaError(path, "no video frame could be decoded")
    if err and err.strip():
        # At log level "error" a clean decode prints nothing; damaged streams (truncated or
        # corrupt files) make the decoder complain while it still salvages some frames.
        raise MediaError(path, f"video is truncated or corrupt: ffmpeg reported decode errors after {n} frames ({_last_line(err)})")
    return np.frombuffer(out, np.uint8, count=n * frame_bytes).reshape(n, height, width, 3).copy()


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: float = 25.0,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    crf: int = 18,
    lossless: bool = False,
) -> Path:
    """Encode frames (and optionally audio) to an H.264/AAC mp4, or losslessly, atomically.

    The file is written under a temporary name beside ``path`` and renamed when complete,
    so a killed run never leaves a half-written video under the final name.

    Args:
        path: output ``.mp4`` path; parent folders are created.
        frames: ``(T, H, W, 3)`` uint8 RGB.
        fps: video frame rate.
        audio: optional mono float32 waveform in [-1, 1], muxed as AAC.
        sample_rate: rate of ``audio`` in Hz.
        crf: x264 constant rate factor (lower is better quality).
        lossless: FFV1 (ffmpeg's lossless intra codec) in RGB (``bgr0``) instead of H.264 4:2:0:
            :func:`read_frames` gives back exactly ``frames``. For a ``.mkv`` path (ignores ``crf``);
            the copy the evaluate stage scores.

    Returns:
        The final path.

    Raises:
        ValueError: frames of the wrong shape or dtype.
        MediaError: ffmpeg failed.
    """
    path = Path(path)
    frames = np.ascontiguousarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    t, h, w, _ = frames.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    if lossless and path.suffix.lower() != ".mkv":
        raise ValueError(f"{path}: a lossless (FFV1) video needs a .mkv path")
    fd, tmp = tempfile.mkstemp(suffix=path.suffix or ".mp4", prefix=f".{path.stem}.", dir=path.parent)
    os.close(fd)
    wav_tmp = None
    try:
        video_in = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{w}x{h}", r=fps)
        streams = [video_in.video]
        if audio is not None:
            from a2v.io.audio import write_wav

            fd2, wav_tmp = tempfile.mkstemp(suffix=".wav", dir=path.parent)
            os.close(fd2)
            write_wav(wav_tmp, audio, sample_rate)
            streams.append(ffmpeg.input(wav_tmp).audio)
        # libx264 needs even sizes; pad by one pixel when odd.
        if lossless:
            out_kwargs = dict(vcodec="ffv1", pix_fmt="bgr0", r=fps)
        else:
            out_kwargs = dict(vcodec="libx264", pix_fmt="yuv420p", crf=crf, r=fps, movflags="+faststart")
        if audio is not None:
            out_kwargs.update(acodec="aac", audio_bitrate="128k")
        video = streams[0]
        if not lossless and (w % 2 or h % 2):
            video = video.filter("pad", w + w % 2, h + h % 2)
        proc = (
            ffmpeg.output(video, *streams[1:], tmp, **out_kwargs)
            .global_args("-nostdin", "-v", "error", "-y")
            .run_async(cmd=ffmpeg_exe(), pipe_stdin=True, pipe_stderr=True)
        )
        _, err = proc.communicate(input=frames.tobytes())
        if proc.returncode != 0:
            raise MediaError(path, f"ffmpeg failed to encode ({_last_line(err)})")
        os.replace(tmp, path)
        tmp = None
    finally:
        for leftover in (tmp, wav_tmp):
            if leftover and os.path.exists(leftover):
                os.unlink(leftover)
    return path


def _last_line(err: object) -> str:
    text = err.decode("utf-8", "replace") if isinstance(err, bytes) else str(err)
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


class VideoStream:
    """An H.264 mp4 written frame by frame (the frames stream to ffmpeg; memory stays flat), then
    given an audio track, atomically.

    Args:
        path: output ``.mp4``; parent folders are created. Nothing appears under this name until
            :meth:`close` has muxed the audio (a temporary file beside it until then).
        width, height: frame size in pixels (odd sizes are padded by one pixel for 4:2:0).
        fps: frame rate. crf: x264 quality.

    Use::

        with VideoStream(out, w, h, 25) as video:
            for frame in frames:          # (h, w, 3) uint8 RGB each
                video.write(frame)
            video.close(audio="speech.wav")   # the user's file, as given

    Raises:
        ValueError: a frame of another size or dtype. MediaError: ffmpeg failed.
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: float = 25.0, crf: int = 18):
        self.path, self.w, self.h, self.fps = Path(path), int(width), int(height), float(fps)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.video_tmp = tempfile.mkstemp(suffix=".mp4", prefix=f".{self.path.stem}.video.", dir=self.path.parent)
        os.close(fd)
        video = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{self.w}x{self.h}", r=self.fps).video
        if self.w % 2 or self.h % 2:
            video = video.filter("pad", self.w + self.w % 2, self.h + self.h % 2)
        self.proc = (ffmpeg.output(video, self.video_tmp, vcodec="libx264", pix_fmt="yuv420p", crf=crf, r=self.fps)
                     .global_args("-nostdin", "-v", "error", "-y")
                     .run_async(cmd=ffmpeg_exe(), pipe_stdin=True, pipe_stderr=True))
        self.n_frames, self.closed = 0, False

    def write(self, frame: np.ndarray) -> None:
        """Append one ``(height, width, 3)`` uint8 RGB frame."""
        frame = np.asarray(frame)
        if frame.shape != (self.h, self.w, 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame must be ({self.h}, {self.w}, 3) uint8, got {frame.shape} {frame.dtype}")
        self.proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        self.n_frames += 1

    def close(self, audio: str | Path | None = None) -> Path:
        """Finish the video; with ``audio`` (any file ffmpeg reads), mux its first audio stream as
        given — its sample rate and channels kept — trimmed or padded with silence to the video's
        duration (frames / fps) exactly. The stream is copied when it is AAC already and needs
        neither trim nor pad; else it is encoded to AAC (what an mp4 holds) at its own rate and
        channel count. Returns the final path.

        Raises:
            MediaError: ffmpeg failed, or no frame was written.
        """
        from a2v.io.audio import probe_audio

        self.proc.stdin.close()
        err = self.proc.stderr.read()
        self.proc.wait()
        self.closed = True
        try:
            if self.proc.returncode != 0:
                raise MediaError(self.path, f"ffmpeg failed to encode ({_last_line(err)})")
            if self.n_frames == 0:
                raise MediaError(self.path, "no frame was written")
            if audio is None:
                os.replace(self.video_tmp, self.path)
                return self.path
            info = probe_audio(audio)
            duration = self.n_frames / self.fps
            fd, tmp = tempfile.mkstemp(suffix=".mp4", prefix=f".{self.path.stem}.", dir=self.path.parent)
            os.close(fd)
            try:
                v = ffmpeg.input(self.video_tmp).video
                a = ffmpeg.input(str(audio)).audio
                # only AAC can be copied: decode the file to count its samples only then
                if info.codec == "aac" and abs(_audio_seconds(audio, info.sample_rate) - duration) < 0.5 / info.sample_rate:
                    out = ffmpeg.output(v, a, tmp, vcodec="copy", acodec="copy", movflags="+faststart")
                else:
                    a = a.filter("apad").filter("atrim", duration=duration)
                    out = ffmpeg.output(v, a, tmp, vcodec="copy", acodec="aac", audio_bitrate="192k", ar=info.sample_rate,
                                        ac=info.channels, movflags="+faststart")
                proc = out.global_args("-nostdin", "-v", "error", "-y").run_async(cmd=ffmpeg_exe(), pipe_stderr=True)
                _, err = proc.communicate()
                if proc.returncode != 0:
                    raise MediaError(self.path, f"ffmpeg failed to mux the audio of {audio} ({_last_line(err)})")
                os.replace(tmp, self.path)
                tmp = None
            finally:
                if tmp and os.path.exists(tmp):
                    os.unlink(tmp)
            return self.path
        finally:
            if os.path.exists(self.video_tmp):
                os.unlink(self.video_tmp)

    def __enter__(self) -> "VideoStream":
        return self

    def __exit__(self, *exc) -> bool:
        if not self.closed:  # an error before close(): stop ffmpeg, leave nothing behind
            self.proc.kill()
            self.proc.wait()
            self.closed = True
            if os.path.exists(self.video_tmp):
                os.unlink(self.video_tmp)
        return False


def _audio_seconds(path: str | Path, rate: int | None = None) -> float:
    """Duration of a file's first audio stream in seconds: its samples, decoded and counted as they
    stream (1 MB at a time: memory does not grow with the file), over its rate (``rate``: the
    stream's, when the caller has probed it already).

    Raises:
        ffmpeg.Error: ffmpeg failed to decode it.
    """
    if rate is None:
        from a2v.io.audio import probe_audio

        rate = probe_audio(path).sample_rate
    proc = (ffmpeg.input(str(path)).audio.output("pipe:", format="s16le", ac=1, ar=rate)
            .global_args("-nostdin", "-v", "error").run_async(cmd=ffmpeg_exe(), pipe_stdout=True, pipe_stderr=True))
    n_bytes = 0
    while block := proc.stdout.read(1 << 20):
        n_bytes += len(block)
    err = proc.stderr.read()
    if proc.wait() != 0:
        raise ffmpeg.Error("ffmpeg", b"", err)
    return n_bytes / 2 / rate
