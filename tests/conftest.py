"""Shared fixtures: the embedded GRID sample (real clips, CC BY 4.0 — see resources/grid_sample)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", message="pkg_resources is deprecated")


def pytest_configure(config):
    """Under pytest-xdist (``make test``: one worker per core), every worker and the processes it starts
    (Snakemake jobs, torchrun, SLURM jobs, which inherit the environment) compute on one thread.
    With the default of one OpenMP thread per core in each of them, the threads outnumber the cores
    and spin-wait on each other: the lip-reader test took 186 s in the 2-worker suite against 21 s
    alone on 2 threads and 28 s alone on 1."""
    import os

    if os.environ.get("PYTEST_XDIST_WORKER"):
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = "1"
        import torch

        torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
GRID_SAMPLE = REPO / "resources" / "grid_sample"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def grid_sample() -> Path:
    return GRID_SAMPLE


@pytest.fixture(scope="session")
def s1_clip() -> Path:
    """A real GRID clip of speaker s1 ("bin green by n eight now")."""
    return GRID_SAMPLE / "s1" / "bgbn8n.mpg"


def make_corpus(root: Path, clips: dict[str, list[str]]) -> Path:
    """A GRID-layout folder holding copies of the given embedded clips ``{speaker: [clip ids]}``."""
    import shutil

    for speaker, ids in clips.items():
        (root / speaker).mkdir(parents=True, exist_ok=True)
        (root / "alignments" / speaker).mkdir(parents=True, exist_ok=True)
        for clip in ids:
            shutil.copy(GRID_SAMPLE / speaker / f"{clip}.mpg", root / speaker)
            align = GRID_SAMPLE / "alignments" / speaker / f"{clip}.align"
            if align.exists():
                shutil.copy(align, root / "alignments" / speaker)
    return root


def demo_config(corpus: Path, out: Path, crop_size: int, **preprocess) -> dict:
    """The real config with GRID pointed at ``corpus``, outputs under ``out``, crops of ``crop_size``."""
    import yaml

    from a2v.config import load_config

    override = out / "override.yaml"
    override.write_text(yaml.safe_dump({
        "results_dir": str(out), "resources_dir": str(out / "resources"),
        "datasets": {"grid": {"source": str(corpus), "speakers": ["s1"], "unseen_speakers": []}},
        "preprocess": {"crop_size": crop_size, "min_frames": 25, **preprocess},
    }))
    return load_config([REPO / "config" / "config.yaml", override])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SHARD_CLIPS = ("bgbn8n", "lgbgzp")


@pytest.fixture(scope="session")
def s1_shard(tmp_path_factory) -> Path:
    """A real feature shard of two s1 clips at 64×64, made by the pipeline's own stages."""
    from a2v.stages.preprocess import build_shards

    corpus = make_corpus(tmp_path_factory.mktemp("corpus"), {"s1": list(SHARD_CLIPS)})
    out = tmp_path_factory.mktemp("results")
    return build_shards(demo_config(corpus, out, 64, content_mel=True), "grid", out)["s1"]


TRAIN_CLIPS = ["bgbn8n", "lgbgzp", "pbai5s", "lgbm3s", "swbc3a", "sbit3s"]
HELD_OUT_CLIPS = ["pwbd8p", "lriy2p"]


@pytest.fixture(scope="session")
def s1_shard8(tmp_path_factory) -> Path:
    """A real feature shard of eight s1 clips at 64×64 (TRAIN_CLIPS + HELD_OUT_CLIPS), made by the
    pipeline's own stages, with the optional clip-level ``content_mel``: the training tests of the
    judges, the pretrained networks and the models share it."""
    from a2v.stages.preprocess import build_shards

    corpus = make_corpus(tmp_path_factory.mktemp("corpus8"), {"s1": TRAIN_CLIPS + HELD_OUT_CLIPS})
    out = tmp_path_factory.mktemp("results8")
    return build_shards(demo_config(corpus, out, 64, content_mel=True), "grid", out)["s1"]


# A speech-driven GAN (a2v.recipes.sdgan) small enough to train in seconds on the CPU.
SDGAN_TINY_D = {"frame_discriminator": {"base_channels": 8, "max_channels": 32, "hidden": 32},
                "sequence_discriminator": {"frame_channels": 8, "max_channels": 32, "frame_code": 32, "audio_channels": 8,
                                           "audio_fc": 32, "audio_code": 16, "rnn_hidden": 24, "hidden": 32}}
SDGAN_TINY_G = {"audio_channels": 8, "audio_fc": 64, "audio_code": 32, "audio_rnn": 32, "id_channels": 8, "max_channels": 64}
SDGAN_HALF = {"image_size": 64, "net_size": 32, "skips": 3, **SDGAN_TINY_G, **SDGAN_TINY_D}  # networks at 32², frames 64²


@pytest.fixture(scope="session")
def sdgan_checkpoint(s1_shard, tmp_path_factory) -> Path:
    """A speech-driven GAN's ``checkpoint.pt`` (SDGAN_HALF) after two reconstruction steps on a real
    clip, written by the phase runner: barely trained, but a complete checkpoint that
    :func:`a2v.inference.load_generator` loads, and the fastest generator for ``a2v generate``/``a2v app``."""
    from a2v.training.loop import train_phase

    config = {"model_type": "sdgan", "model": SDGAN_HALF, "preprocess": {"sample_rate": 16000, "fps": 25.0},
              "training": {"batch_size": 2, "sequence_length": 8, "frame_samples": 2, "log_every": 1, "checkpoint_every": 1000},
              "phases": [{"name": "reconstruction", "steps": 2, "discriminators": [], "losses": {"l1_lower": 1.0}}]}
    return train_phase(config, [str(s1_shard)], [(str(s1_shard), SHARD_CLIPS[0])], 0, tmp_path_factory.mktemp("sdgan"),
                       log=lambda m: None)


@pytest.fixture
def one_thread():
    """One torch thread: on a shared 2-core machine two threads make small training steps far slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# The longest test files first: `make test` runs pytest-xdist with --dist loadfile, which hands whole
# files to the workers in collection order, so a long file collected last would run alone at the end.
# (The SLURM test waits on the scheduler most of its time; the tiny workflow run is the longest fixture.)
LONGEST_FIRST = ("test_slurm.py", "test_workflow.py", "test_training.py", "test_recipes.py", "test_preprocess.py",
                 "test_oneshota2v.py", "test_judges.py", "test_resume.py", "test_ddp.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file's own order is kept
