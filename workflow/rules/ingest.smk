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
        # rerun when what is fetched changes (Snakemake's params rerun trigger)
        fetched=lambda wc: repr({k: config["datasets"][wc.dataset].get(k) for k in ("source", "sha256", "speakers", "unseen_speakers")}),
    shell:
        "{params.a2v} download {params.args} --dataset {wildcards.dataset} --out {output.manifest} 2> {log}"


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
    shell:
        "{params.a2v} ingest {params.args} --dataset {wildcards.dataset} --out {output.index} 2> {log}"
