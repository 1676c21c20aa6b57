"""Stages 1–4 in one call, without Snakemake: dataset source → one feature shard per speaker.

For benchmarks, tests and notebooks; the workflow runs the same stage functions as separate jobs.
"""

from __future__ import annotations

from pathlib import Path

from a2v.stages import align, extract, features, ingest


def build_shards(config: dict, dataset: str, out_dir: str | Path, log_file=None) -> dict[str, Path]:
    """Run ingest, extract, align and features for every speaker of ``datasets.<dataset>.speakers``.

    Outputs use the workflow's layout below ``out_dir`` (``<dataset>/index.tsv``,
    ``interim/<dataset>/<speaker>/…``, ``features/<dataset>/<speaker>.h5``).

    Returns:
        ``{speaker: shard path}``.
    """
    out = Path(out_dir)
    index = ingest.run(config, dataset, out / dataset / "index.tsv", log_file)
    shards = {}
    for speaker in config["datasets"][dataset]["speakers"]:
        interim = out / "interim" / dataset / speaker
        ext = extract.run(config, index, speaker, interim / "extract.h5", interim / "extract.tsv", log_file)
        ali = align.run(config, ext, speaker, interim / "aligned.h5", interim / "align.tsv", log_file)
        shards[speaker] = features.run(config, dataset, speaker, index, ext, ali,
                                       out / "features" / dataset / f"{speaker}.h5",
                                       out / "features" / dataset / f"{speaker}.tsv", log_file)
    return shards
