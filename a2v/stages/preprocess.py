"""Stages 1–4 in one call, without Snakemake: dataset source → the feature shards of its speakers.

For benchmarks, tests and notebooks; the workflow runs the same stage functions as separate jobs.
"""

from __future__ import annotations

from pathlib import Path

from a2v.datasets.source import speaker_shards
from a2v.stages import align, extract, features, ingest


def build_shards(config: dict, dataset: str, out_dir: str | Path, log_file=None) -> dict[str, Path]:
    """Run ingest, then extract, align and features for every shard of ``datasets.<dataset>.speakers``
    (:func:`a2v.datasets.source.speaker_shards`: one per speaker unless ``speakers_per_shard`` > 1).

    Outputs use the workflow's layout below ``out_dir`` (``<dataset>/index.tsv``,
    ``interim/<dataset>/<shard>/…``, ``features/<dataset>/<shard>.h5``).

    Returns:
        ``{shard name: shard path}`` (the shard name is the speaker id for a shard of one speaker).
    """
    out = Path(out_dir)
    index = ingest.run(config, dataset, out / dataset / "index.tsv", log_file)
    shards = {}
    for name, speakers in speaker_shards(config["datasets"][dataset], "speakers").items():
        interim = out / "interim" / dataset / name
        ext = extract.run(config, index, speakers, interim / "extract.h5", interim / "extract.tsv", log_file)
        ali = align.run(config, ext, name, interim / "aligned.h5", interim / "align.tsv", log_file)
        shards[name] = features.run(config, dataset, name, index, ext, ali,
                                    out / "features" / dataset / f"{name}.h5",
                                    out / "features" / dataset / f"{name}.tsv", log_file)
    return shards
