# Stages 2–3 — extract (audio to 16 kHz mono, video checked at 25 fps) and align (landmarks,
# head-pose filter, similarity-aligned crops), one job per (dataset, shard). {speaker} is the
# shard: a speaker id, or with datasets.<name>.speakers_per_shard > 1 the name of a group of
# speakers (a2v.datasets.source.speaker_shards; common.smk says why the wildcard keeps its name).
# a2v: a group's membership is not a param: it only changes with the speaker lists, which rerun
# ingest (its settings), and index.tsv is every extract and features job's input.


rule extract:
    input:
        index=f"{RESULTS}/{{dataset}}/index.tsv",
    output:
        h5=f"{RESULTS}/interim/{{dataset}}/{{speaker}}/extract.h5",
        summary=f"{RESULTS}/interim/{{dataset}}/{{speaker}}/extract.tsv",
    log:
        f"{RESULTS}/logs/extract/{{dataset}}_{{speaker}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/extract/{{dataset}}_{{speaker}}.tsv"
    conda:
        "../envs/preprocess.yaml"
    params:
        a2v=A2V,
        args=CONFIG_ARGS,
        settings=settings_of("preprocess"),
    shell:
        "{params.a2v} extract {params.args} --index {input.index} --speaker {wildcards.speaker}"
        " --out {output.h5} --summary {output.summary} > {log} 2>&1"


rule align:
    input:
        h5=rules.extract.output.h5,
    output:
        h5=f"{RESULTS}/interim/{{dataset}}/{{speaker}}/aligned.h5",
        summary=f"{RESULTS}/interim/{{dataset}}/{{speaker}}/align.tsv",
    log:
        f"{RESULTS}/logs/align/{{dataset}}_{{speaker}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/align/{{dataset}}_{{speaker}}.tsv"
    conda:
        "../envs/preprocess.yaml"
    params:
        a2v=A2V,
        args=CONFIG_ARGS,
        settings=settings_of("preprocess"),
    shell:
        "{params.a2v} align {params.args} --extracted {input.h5} --speaker {wildcards.speaker}"
        " --out {output.h5} --summary {output.summary} > {log} 2>&1"
