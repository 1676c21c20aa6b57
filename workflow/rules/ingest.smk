# Stage 0 — download: fetch the dataset's sources (URLs, {speaker} templates, archives; resumable,
# retried, sha256-verified), unpack them under resources/<dataset>/ and list them in manifest.tsv.
# Stage 1 — ingest: index the fetched corpus folder (no network I/O).


rule download:
    output:
        manifest=f"{RESOURCES}/{{dataset}}/manifest.tsv",
    log:
        f"{RESULTS}/logs/download/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/download/{{dataset}}.tsv"
    localrule: True
    conda:
        "../envs/preprocess.yaml"
    params:
        a2v=A2V,
        args=CONFIG_ARGS,
        # what is fetched: a dataset's adapter and options only change how ingest indexes it
        settings=settings_of("datasets", "{dataset}", only=("source", "sha256", "speakers", "unseen_speakers")),
    shell:
        "{params.a2v} download {params.args} --dataset {wildcards.dataset} --out {output.manifest} > {log} 2>&1"


rule ingest:
    input:
        manifest=f"{RESOURCES}/{{dataset}}/manifest.tsv",
    output:
        index=f"{RESULTS}/{{dataset}}/index.tsv",
    log:
        f"{RESULTS}/logs/ingest/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/ingest/{{dataset}}.tsv"
    conda:
        "../envs/preprocess.yaml"
    params:
        a2v=A2V,
        args=CONFIG_ARGS,
        settings=settings_of("datasets", "{dataset}"),  # adapter, options, source, speakers
    shell:
        "{params.a2v} ingest {params.args} --dataset {wildcards.dataset} --out {output.index} > {log} 2>&1"


# The shard lists that rules pass as `--shards @FILE` (common.smk: shard_list).
rule shard_list:
    input:
        shards=lambda wildcards: shard_paths(wildcards.dataset, wildcards.kind),
    output:
        f"{RESULTS}/{{dataset}}/shards_{{kind}}.txt",
    wildcard_constraints:
        kind="speakers|all",
    log:
        f"{RESULTS}/logs/shard_list/{{dataset}}_{{kind}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/shard_list/{{dataset}}_{{kind}}.tsv"
    localrule: True
    conda:
        "../envs/preprocess.yaml"
    script:
        "../scripts/shard_list.py"
