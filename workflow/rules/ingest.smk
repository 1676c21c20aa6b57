# Stage 1 — ingest: resolve the dataset source (folder, archive or URL) and index its clips.


rule ingest:
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
