"""Stage 1, ingest: find a dataset's corpus folder and index its clips.

URLs are fetched beforehand by the ``download`` stage (:mod:`a2v.stages.download`); ingest
itself does no network I/O: it uses the configured folder, or the folder the download stage
unpacked under ``resources/<dataset>/`` (a local archive is unpacked here if need be)."""

from __future__ import annotations

from pathlib import Path

from a2v.datasets.grid import alignment_rejected
from a2v.datasets.record import write_index
from a2v.datasets.registry import make_adapter
from a2v.datasets.source import dataset_speakers, resolve_source
from a2v.stages.common import get_logger


def run(config: dict, dataset: str, out_index: str | Path, log_file: str | Path | None = None) -> Path:
    """Write ``index.tsv`` (dataset, speaker, clip_id, video, transcript, words) for one dataset.

    The speakers indexed are ``datasets.<dataset>.speakers`` plus ``unseen_speakers``. Files the
    adapter passed over (its ``ignored``) and what it corrected or left out (its ``notes``, when
    it has them: e.g. GRID's remapped alignment folders, one line each, and ``.align`` files whose
    words disagree with their clip codes) are logged as warnings.

    Raises:
        A2VError: a URL source not downloaded yet (run the download stage), unsafe archive,
            missing speaker folder, or no clip found.
    """
    log = get_logger("ingest", log_file)
    ds = config["datasets"][dataset]
    cache = Path(config["resources_dir"]) / dataset
    speakers = dataset_speakers(ds)
    root = resolve_source(ds["source"], cache, ds.get("sha256"), speakers, offline=True, log=log)
    log.info("dataset %s: corpus folder %s", dataset, root)
    adapter = make_adapter(ds["adapter"], root, dataset, **ds.get("options", {}))
    records = adapter.clips(speakers)
    for path in getattr(adapter, "ignored", []):
        log.warning("ignored %s: does not follow the %s naming scheme, or its companion file is unusable", path, ds["adapter"])
    for note in getattr(adapter, "notes", []):  # e.g. GRID: remapped alignment folders, .align files not used
        log.warning("%s", note)
    if not records:
        from a2v.errors import A2VError

        raise A2VError(f"{root}: no clips found for speakers {speakers}")
    for speaker in speakers:
        n = sum(r.speaker == speaker for r in records)
        n_tr = sum(r.speaker == speaker and bool(r.transcript) for r in records)
        n_rej = sum(r.speaker == speaker and alignment_rejected(r) for r in records)
        log.info("speaker %s: %d clips, %d with alignments%s", speaker, n, n_tr,
                 f", {n_rej} alignment(s) not used (words disagree with the clip code, or unreadable)" if n_rej else "")
    return write_index(records, out_index)
