"""The ``a2v`` command line: one sub-command per pipeline stage, plus ``generate``.

Every Snakemake rule calls one of these; each works without Snakemake too, e.g.::

    a2v ingest   -c config/config.yaml -c config/demo.yaml --dataset grid --out results/grid/index.tsv
    a2v generate --image face.jpg --audio speech.wav --checkpoint results/man_grid/phase2/checkpoint.pt -o out.mp4
    a2v app --results results          # the same as a web page (Gradio) at http://127.0.0.1:7860

Errors a2v raises on purpose (:class:`a2v.errors.A2VError`) are printed as one line naming the
file and the cause, with exit status 2; anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from a2v.errors import A2VError


def _config(args) -> dict:
    from a2v.config import load_config

    return load_config(args.configfile)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--configfile", action="append", required=True, help="config YAML (repeat to merge, later wins)")
    p.add_argument("--log", help="also write the log to this file")


def cmd_download(args) -> None:
    from a2v.stages import download

    download.run(_config(args), args.dataset, args.out, args.log)


def cmd_ingest(args) -> None:
    from a2v.stages import ingest

    ingest.run(_config(args), args.dataset, args.out, args.log)


def cmd_extract(args) -> None:
    from a2v.stages import extract

    extract.run(_config(args), args.index, args.speaker, args.out, args.summary, args.log)


def _single_threaded_opencv() -> None:
    """One OpenCV thread per stage process: Snakemake runs one job per core, and OpenCV's idle
    worker threads otherwise compete with dlib and ffmpeg (tracking 2.7 -> 1.6 ms a frame)."""
    import cv2

    cv2.setNumThreads(1)


def cmd_align(args) -> None:
    from a2v.stages import align

    _single_threaded_opencv()
    align.run(_config(args), args.extracted, args.speaker, args.out, args.summary, args.log)


def cmd_features(args) -> None:
    from a2v.stages import features

    _single_threaded_opencv()
    features.run(_config(args), args.dataset, args.speaker, args.index, args.extracted, args.aligned, args.out, args.summary, args.log)


def cmd_preprocess_summary(args) -> None:
    from a2v.datasets.source import speaker_shards
    from a2v.stages import summary

    config = _config(args)
    shards = speaker_shards(config["datasets"][args.dataset])
    summary.run(summary.layout_tables(config["results_dir"], args.dataset, shards), args.out, args.log)


def cmd_select(args) -> None:
    from a2v.config import experiment
    from a2v.stages import select

    config = _config(args)
    # an experiment's split, or the dataset's (top-level select settings; the lip-reader's)
    exp = experiment(config, args.experiment) if args.experiment else {"select": config["select"]}
    select.run(config, exp, args.shards, args.out, args.log, unseen_shards=args.unseen_shards,
               selection_json=args.selection_out)


def cmd_train_judge(args) -> None:
    from a2v.stages import judges

    judges.run(_config(args), args.judge, args.split, args.shards, args.out_dir, args.device, args.log)


def cmd_train(args) -> None:
    from a2v.stages import train

    pretrained = {}
    for item in args.pretrained or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--pretrained expects NAME=PATH, got {item!r}")
        pretrained[name] = path
    train.run(_config(args), args.experiment, args.phase, args.split, args.shards, args.out_dir, args.init, args.device, args.log,
              pretrained)


def cmd_pretrain(args) -> None:
    from a2v.stages import pretrain

    pretrain.run(_config(args), args.experiment, args.network, args.split, args.shards, args.out_dir, args.device, args.log)


def cmd_generate_test(args) -> None:
    from a2v.stages import generate_test

    generate_test.run(_config(args), args.checkpoint, args.split, args.shards, args.out_dir, args.device, args.log)


def cmd_evaluate(args) -> None:
    from a2v.config import experiment
    from a2v.stages import evaluate

    config = _config(args)
    evaluate.run(config, experiment(config, args.experiment), args.split, args.shards, args.videos, args.out_dir, args.log,
                 args.lipreader, args.syncnet)


def cmd_report(args) -> None:
    from a2v.config import experiment
    from a2v.stages import report

    config = _config(args)
    report.run(config, experiment(config, args.experiment), args.metrics, args.per_clip, args.ear, args.videos, args.shards,
               args.checkpoints, args.out, args.lipreader, args.syncnet, args.n_videos, args.log, args.selection)


def cmd_compare(args) -> None:
    from a2v.stages import compare

    config = _config(args)
    compare.run(config, args.experiments, args.metrics, args.shards, args.out_csv, args.out_html,
                int(config.get("comparison", {}).get("n_videos", 3)), args.log, args.out_paired)


def cmd_generate(args) -> None:
    from a2v.generate import generate_batch, generate_video

    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    if args.batch:
        results = generate_batch(args.batch, args.checkpoint, args.device, args.finetune_steps, args.crop_only, log)
        for out, error in results:
            print(out or f"error: {error}")
        if any(error for _, error in results):
            raise A2VError(f"{args.batch}: {sum(1 for _, e in results if e)} of {len(results)} videos failed (listed above)")
        return
    missing = [f for f in ("image", "audio", "output") if not getattr(args, f)]
    if missing:
        raise A2VError(f"generate needs --image, --audio and -o (or --batch jobs.csv); missing: {', '.join(missing)}")
    path = generate_video(args.image, args.audio, args.checkpoint, args.output, device=args.device,
                          finetune_steps=args.finetune_steps, log=log, crop_only=args.crop_only)
    print(path)


def cmd_app(args) -> None:
    import importlib.util
    from pathlib import Path

    from a2v.app import find_checkpoints

    checkpoints = [Path(c) for c in args.checkpoint or []]
    if args.results:
        found = find_checkpoints(args.results)
        if not found:
            raise A2VError(f"{args.results}: no <experiment>/phase<k>/checkpoint.pt in this results folder")
        checkpoints += [c for c in found if c not in checkpoints]
    if importlib.util.find_spec("gradio") is None:  # only this command needs it
        raise A2VError("a2v app needs gradio (pip install -r requirements.txt)")
    from a2v.app import serve

    serve(checkpoints, args.device, args.host, args.port, args.finetune_steps)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="a2v", description="audio-driven talking-face pipeline",
                                     fromfile_prefix_chars="@")  # --shards @list.txt: one path per line
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("download", help="fetch a dataset's sources (resumable, retried, sha256-verified) and write its manifest")
    _add_common(p)
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True, help="manifest.tsv (resources/<dataset>/manifest.tsv)")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("ingest", help="index a dataset (folder, archive or URL)")
    _add_common(p)
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True, help="index.tsv")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("extract", help="decode audio to 16 kHz mono and check videos, per shard (one or several speakers)")
    _add_common(p)
    p.add_argument("--index", required=True)
    p.add_argument("--speaker", required=True, help="a shard of the dataset (a2v.datasets.source.speaker_shards): a speaker id, or a group's name with speakers_per_shard > 1")
    p.add_argument("--out", required=True, help="extract.h5")
    p.add_argument("--summary", required=True, help="per-clip outcome TSV")
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("align", help="landmarks, head-pose filter and aligned crops, per shard")
    _add_common(p)
    p.add_argument("--extracted", required=True)
    p.add_argument("--speaker", required=True, help="the shard's name (its speakers are the extracted file's)")
    p.add_argument("--out", required=True, help="aligned.h5")
    p.add_argument("--summary", required=True)
    p.set_defaults(func=cmd_align)

    p = sub.add_parser("features", help="per-frame features into the shard's HDF5 file (one or several speakers)")
    _add_common(p)
    p.add_argument("--dataset", required=True)
    p.add_argument("--speaker", required=True, help="the shard's name (its speakers are the aligned file's)")
    p.add_argument("--index", required=True)
    p.add_argument("--extracted", required=True)
    p.add_argument("--aligned", required=True)
    p.add_argument("--out", required=True, help="shard .h5")
    p.add_argument("--summary", required=True)
    p.set_defaults(func=cmd_features)

    p = sub.add_parser("preprocess-summary", help="clips and frames kept/skipped per stage and speaker, by cause")
    _add_common(p)
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True, help="summary TSV")
    p.set_defaults(func=cmd_preprocess_summary)

    p = sub.add_parser("select", help="train/test split and phoneme-balanced selection")
    _add_common(p)
    p.add_argument("--experiment", help="the experiment's split; without it, the dataset's (top-level select settings)")
    p.add_argument("--shards", nargs="+", required=True)
    p.add_argument("--unseen-shards", nargs="*", default=[], help="the unseen speakers' shards: split test_unseen")
    p.add_argument("--out", required=True, help="split.tsv")
    p.add_argument("--selection-out", help="selection.json: phoneme histograms before/after Algorithm 1 and distances")
    p.set_defaults(func=cmd_select)

    p = sub.add_parser("train", help="train one curriculum phase")
    _add_common(p)
    p.add_argument("--experiment", required=True)
    p.add_argument("--phase", type=int, required=True, help="1-based phase number")
    p.add_argument("--split", required=True)
    p.add_argument("--shards", nargs="+", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--init", help="checkpoint of the previous phase")
    p.add_argument("--pretrained", nargs="*", metavar="NAME=PATH", help="checkpoints of the networks the recipe pretrains")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("pretrain", help="train a network an experiment's losses use (e.g. a sync discriminator) before phase 1")
    _add_common(p)
    p.add_argument("--experiment", required=True)
    p.add_argument("--network", required=True, help="a name of the recipe's pretrained_networks")
    p.add_argument("--split", required=True, help="the experiment's split.tsv (its train clips are used)")
    p.add_argument("--shards", nargs="+", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("train-judge", help="train a metric network (lipreader: WER; syncnet: LSE-C/D) on the dataset's non-test clips")
    _add_common(p)
    p.add_argument("judge", choices=["lipreader", "syncnet"])
    p.add_argument("--split", required=True, help="the dataset's split.tsv")
    p.add_argument("--shards", nargs="+", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_train_judge)

    p = sub.add_parser("generate-test", help="generate a video for every test clip")
    _add_common(p)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--shards", nargs="+", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_generate_test)

    p = sub.add_parser("evaluate", help="per-clip metrics and metrics.csv")
    _add_common(p)
    p.add_argument("--experiment", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--shards", nargs="+", required=True)
    p.add_argument("--videos", required=True, help="folder of generated test videos")
    p.add_argument("--out-dir", required=True, help="results/<exp>")
    p.add_argument("--lipreader", help="LipNet checkpoint (the WER judge); without it WER is NA")
    p.add_argument("--syncnet", help="SyncNet checkpoint (the LSE-C/D judge); without it LSE is NA")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("report", help="results/<exp>/report.html: metrics, side-by-side videos, EAR, losses, rho")
    _add_common(p)
    p.add_argument("--experiment", required=True)
    p.add_argument("--metrics", required=True, help="metrics.csv")
    p.add_argument("--per-clip", required=True, help="metrics/per_clip.csv")
    p.add_argument("--ear", required=True, help="metrics/ear.csv")
    p.add_argument("--videos", required=True, help="videos/videos.tsv")
    p.add_argument("--shards", nargs="+", required=True)
    p.add_argument("--checkpoints", nargs="+", required=True, help="each phase's checkpoint.pt, in order")
    p.add_argument("--lipreader")
    p.add_argument("--syncnet")
    p.add_argument("--n-videos", type=int, default=3)
    p.add_argument("--selection", help="the select stage's selection.json (phoneme histograms before/after)")
    p.add_argument("--out", required=True, help="report.html")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("compare", help="results/model_comparison.csv/.html: experiments of one dataset in one table and page")
    _add_common(p)
    p.add_argument("--experiments", nargs="+", required=True)
    p.add_argument("--metrics", nargs="+", required=True, help="each experiment's metrics.csv, in --experiments order")
    p.add_argument("--shards", nargs="+", required=True, help="the dataset's feature shards with the test clips")
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-html", required=True)
    p.add_argument("--out-paired", help="paired differences against the static baseline (default: <out-csv>_paired.csv)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("generate", help="one face image + speech audio -> talking-head mp4")
    p.add_argument("--image", help="face photo (jpg/png)")
    p.add_argument("--audio", help="speech (any format/rate ffmpeg reads; the output carries it as given)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("-o", "--output", help="output .mp4 (the whole photo, the face pasted back)")
    p.add_argument("--crop-only", action="store_true", help="write the aligned face crops, not the whole photo")
    p.add_argument("--batch", metavar="JOBS.CSV", help="CSV image,audio,output: one video per line, one model load")
    p.add_argument("--device", default="auto")
    p.add_argument("--finetune-steps", type=int, default=None,
                   help="one-shot fine-tuning steps on the face before generating (OneShotA2V §5; 0: none; "
                        "default: the checkpoint's training.finetune_steps)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("app", help="a web page (Gradio) for generate: upload a photo and speech, pick a checkpoint, watch the video")
    p.add_argument("--checkpoint", action="append", help="a checkpoint.pt to offer (repeat for several)")
    p.add_argument("--results", help="also offer every <experiment>/phase<k>/checkpoint.pt of this results folder")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--device", default="auto")
    p.add_argument("--finetune-steps", type=int, default=None,
                   help="one-shot fine-tuning steps on each face, as for generate (default: the checkpoint's)")
    p.set_defaults(func=cmd_app)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 a2v error)."""
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except A2VError as exc:
        print(f"a2v {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0
