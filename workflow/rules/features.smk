# Stage 4 — features: MFCC, mel, F0, energy, Farnebäck flow, keypoint heatmaps, EAR into one
# HDF5 shard per (dataset, shard): one speaker's clips, or a group's (speakers_per_shard; each
# clip under its own speaker; schema: a2v/features/shard.py).


rule features:
    input:
        index=f"{RESULTS}/{{dataset}}/index.tsv",
        extracted=rules.extract.output.h5,
        aligned=rules.align.output.h5,
    output:
        shard=f"{RESULTS}/features/{{dataset}}/{{speaker}}.h5",
        summary=f"{RESULTS}/features/{{dataset}}/{{speaker}}.tsv",
    log:
        f"{RESULTS}/logs/features/{{dataset}}_{{speaker}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/features/{{dataset}}_{{speaker}}.tsv"
    conda:
        "../envs/preprocess.yaml"
    params:
        a2v=A2V,
        args=CONFIG_ARGS,
        settings=settings_of("preprocess"),
    shell:
        "{params.a2v} features {params.args} --dataset {wildcards.dataset} --speaker {wildcards.speaker}"
        " --index {input.index} --extracted {input.extracted} --aligned {input.aligned}"
        " --out {output.shard} --summary {output.summary} > {log} 2>&1"


# Clips and frames in / kept / skipped (by cause) per stage and speaker, over the shards (a2v/stages/summary.py).
rule preprocess_summary:
    input:
        unpack(stage_tables),
    output:
        f"{RESULTS}/{{dataset}}/preprocess_summary.tsv",
    log:
        f"{RESULTS}/logs/preprocess_summary/{{dataset}}.log",
    localrule: True
    conda:
        "../envs/preprocess.yaml"
    params:
        a2v=A2V,
        args=CONFIG_ARGS,
        settings=settings_of("datasets", "{dataset}", only=("speakers", "unseen_speakers", "speakers_per_shard")),
    shell:
        "{params.a2v} preprocess-summary {params.args} --dataset {wildcards.dataset} --out {output} > {log} 2>&1"
