"""The web page of ``a2v generate`` (``a2v app``): a Gradio page on which a user uploads a face photo
and speech, picks a checkpoint and watches (and downloads) the talking-head video.

Generation is :func:`a2v.generate.generate_video`, unchanged: the same face alignment, paste-back
and audio handling as the command line. Each checkpoint is loaded once, on its first use, and kept
by the page's :class:`Studio`; one-shot fine-tuning (OneShotA2V) changes the loaded weights, which
are restored after every video, so each face starts from the checkpoint's weights.

Errors a2v raises on purpose (:class:`a2v.errors.A2VError`: no face in the photo, silent or
unreadable audio, an image smaller than the face crop) are shown in the page's status box as one
line; the video stays empty. The page never phones home: Gradio's analytics and version check are
off and no share link (which would download ``frpc``) is made.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

from a2v.errors import A2VError


def find_checkpoints(results_dir: str | Path) -> list[Path]:
    """Every phase checkpoint of a results folder, ``<results>/<experiment>/phase<k>/checkpoint.pt``,
    by experiment name then phase number (phase10 after phase2)."""
    def key(p: Path):
        return p.parent.parent.name, int(re.sub(r"\D", "", p.parent.name) or 0)

    return sorted(Path(results_dir).glob("*/phase*/checkpoint.pt"), key=key)


def checkpoint_label(path: Path) -> str:
    """A checkpoint's name in the page's list: ``<experiment>/<phase>`` (``man_grid/phase2``)."""
    return f"{path.parent.parent.name}/{path.parent.name}"


class Studio:
    """What the page generates with: the checkpoints it offers, the loaded models (one per
    checkpoint, loaded on first use) and a temporary folder for the videos, removed with the object.

    Args:
        checkpoints: the ``checkpoint.pt`` files to offer (at least one).
        device: where the models run (``auto``, ``cpu``, ``cuda``… as :func:`a2v.device.resolve_device` reads it).
        finetune_steps: one-shot fine-tuning steps before each video (``None``: the checkpoint's
            ``training.finetune_steps``; 0: none), as ``a2v generate --finetune-steps``.

    Raises:
        A2VError: no checkpoint, or one that is not a file.
        ValueError: a CUDA device asked for where none is.
    """

    def __init__(self, checkpoints: Sequence[str | Path], device: str = "auto", finetune_steps: int | None = None):
        from a2v.device import resolve_device

        self.checkpoints = [Path(c) for c in checkpoints]
        if not self.checkpoints:
            raise A2VError("no checkpoint to offer: give --checkpoint or a --results folder with <experiment>/phase<k>/checkpoint.pt")
        missing = [str(c) for c in self.checkpoints if not c.is_file()]
        if missing:
            raise A2VError(f"{', '.join(missing)}: checkpoint not found")
        self.device = resolve_device(device)
        self.finetune_steps = finetune_steps
        self.models: dict[Path, object] = {}  # checkpoint -> a2v.inference.Generator
        self.out_dir = Path(tempfile.mkdtemp(prefix="a2v-app-"))
        weakref.finalize(self, shutil.rmtree, self.out_dir, True)

    def model(self, checkpoint: str | Path):
        """The :class:`~a2v.inference.Generator` of one of the offered checkpoints, loaded once.

        Raises:
            A2VError: a checkpoint the page does not offer, or one that does not load.
        """
        from a2v.inference import load_generator

        path = Path(checkpoint)
        if path not in self.checkpoints:
            raise A2VError(f"{path}: not one of this page's checkpoints")
        if path not in self.models:
            try:
                self.models[path] = load_generator(path, self.device)
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                raise A2VError(f"{path}: cannot load this checkpoint ({exc})") from exc
        return self.models[path]

    def generate(self, image: str | Path | None, audio: str | Path | None, checkpoint: str | Path | None,
                 log: Callable[[str], None] | None = None) -> Path:
        """One video: ``image`` speaking ``audio`` with ``checkpoint``'s model, written (atomically)
        to a fresh folder under :attr:`out_dir` as ``<photo>_<audio>.mp4``; the photo's size, 25 fps,
        the audio as given (:func:`a2v.generate.generate_video`).

        Raises:
            A2VError: a missing input, no face in the photo, unreadable or silent audio, a
                checkpoint that does not load (:class:`~a2v.errors.MediaError`, :class:`~a2v.errors.NoFaceError`).
        """
        from a2v.generate import generate_video, weights_restored

        for value, what in ((image, "a face photo"), (audio, "speech audio"), (checkpoint, "a checkpoint")):
            if not value:
                raise A2VError(f"no {what}: upload or pick one first")
        model = self.model(checkpoint)
        out = Path(tempfile.mkdtemp(dir=self.out_dir)) / f"{Path(image).stem}_{Path(audio).stem}.mp4"
        try:
            with weights_restored(model):  # fine-tuning on this face must not carry over to the next
                return generate_video(image, audio, None, out, self.device, self.finetune_steps, log, model=model, progress=False)
        except NotImplementedError as exc:  # --finetune-steps for a model without one-shot fine-tuning
            raise A2VError(f"{checkpoint}: {exc}") from exc


def build_app(checkpoints: Sequence[str | Path], device: str = "auto", finetune_steps: int | None = None):
    """The page (a ``gradio.Blocks``, not launched): photo and audio uploads, a checkpoint list, a
    Generate button, the video (to watch and download) and a status line.

    Args:
        checkpoints: the ``checkpoint.pt`` files the list offers, the first one selected.
        device, finetune_steps: as :class:`Studio`.

    Raises:
        A2VError: no checkpoint, or one that is not a file.
    """
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # read when gradio is imported: no telemetry, no version check
    import gradio as gr

    studio = Studio(checkpoints, device, finetune_steps)

    def run(image, audio, checkpoint):
        lines = []
        try:
            out = studio.generate(image, audio, checkpoint, log=lines.append)
        except A2VError as exc:
            return None, f"error: {exc}"
        return str(out), "\n".join([*lines, f"done: {out}"])

    # Gradio's copies of uploads and videos: files older than a day are removed every hour
    with gr.Blocks(title="a2v: talking face from a photo and speech", analytics_enabled=False, delete_cache=(3600, 86400)) as page:
        gr.Markdown("## a2v: a talking face from one photo and any speech\n"
                    "Upload a face photo and speech audio, pick a trained checkpoint and press Generate.")
        with gr.Row():
            image = gr.Image(type="filepath", label="face photo", sources=["upload"], elem_id="image")
            audio = gr.Audio(type="filepath", label="speech", sources=["upload"], elem_id="audio")
        choices = [(checkpoint_label(c), str(c)) for c in studio.checkpoints]
        checkpoint = gr.Dropdown(choices=choices, value=choices[0][1], label="checkpoint", elem_id="checkpoint")
        button = gr.Button("Generate", variant="primary", elem_id="generate")
        video = gr.Video(label="talking face", interactive=False, format=None, elem_id="video")
        status = gr.Textbox(label="status", interactive=False, lines=3, elem_id="status")
        button.click(run, [image, audio, checkpoint], [video, status], concurrency_limit=1)  # one video at a time
    page.studio = studio  # the page's models and temporary folder, for callers and tests
    return page


def serve(checkpoints: Sequence[str | Path], device: str = "auto", host: str = "127.0.0.1", port: int = 7860,
          finetune_steps: int | None = None) -> None:
    """Serve the page at ``http://host:port`` until interrupted (no share link, no analytics,
    server-side rendering off: nothing is downloaded or sent out).

    Raises:
        A2VError: no checkpoint, or one that is not a file.
        OSError: the port is taken.
    """
    page = build_app(checkpoints, device, finetune_steps)
    page.queue().launch(server_name=host, server_port=port, share=False, ssr_mode=False, inbrowser=False,
                        mcp_server=False, show_error=True, allowed_paths=[str(page.studio.out_dir)])
