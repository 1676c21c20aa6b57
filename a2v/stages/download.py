"""Stage 0, download: fetch a dataset's sources (resumable, retried, checksum-verified), unpack
them safely under ``resources/<dataset>/`` and write ``manifest.tsv``.

This is the only stage that uses the network; ``ingest`` then indexes the fetched folder
offline. See :mod:`a2v.datasets.source`.
"""

from __future__ import annotations

from pathlib import Path

from a2v.datasets.source import dataset_speakers, fetch, read_manifest
from a2v.errors import ConfigError
from a2v.stages.common import get_logger


def run(config: dict, dataset: str, out_manifest: str | Path, log_file: str | Path | None = None) -> Path:
    """Fetch ``datasets.<dataset>`` into ``<resources_dir>/<dataset>`` and write its manifest.

    ``{speaker}`` in a source expands over the dataset's speakers plus unseen_speakers. A rerun
    resumes partial downloads and skips what is complete (no network I/O when all is there).

    Args:
        config: the merged, validated config.
        dataset: a key of ``datasets``.
        out_manifest: the manifest TSV (``resources/<dataset>/manifest.tsv``): source, local,
            bytes, sha256 of every fetched file.
        log_file: also log to this file.

    Returns:
        ``out_manifest``.

    Raises:
        ConfigError: unknown dataset, or a ``{speaker}`` template without speakers.
        A2VError: a download fails (client error, retries exhausted), a checksum differs, or an
            archive is unsafe or corrupt.
    """
    log = get_logger("download", log_file)
    if dataset not in config["datasets"]:
        raise ConfigError(f"dataset {dataset!r} is not in the config (known: {sorted(config['datasets'])})")
    ds = config["datasets"][dataset]
    cache = Path(config["resources_dir"]) / dataset
    speakers = dataset_speakers(ds)
    root = fetch(ds, cache, speakers, manifest=out_manifest, log=log)
    files = read_manifest(out_manifest)
    log.info("dataset %s: %d source file(s), %.1f MiB, corpus folder %s", dataset, len(files),
             sum(f.bytes for f in files) / 2**20, root)
    return Path(out_manifest)
