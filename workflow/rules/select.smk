# Stage 5 — select: train/test split by clip and phoneme-balanced selection (CRAN Algorithm 1).


rule select:
    input:
        shards=exp_shards,
        unseen=exp_unseen_shards,
    output:
        split=f"{RESULTS}/{{exp}}/split.tsv",
    log:
        f"{RESULTS}/logs/select/{{exp}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/select/{{exp}}.tsv"
    conda:
        "../envs/preprocess.yaml"
    params:
        a2v=A2V,
        args=CONFIG_ARGS,
        settings=exp_settings_of("select"),  # top-level select under the experiment's own
    shell:
        "{params.a2v} select {params.args} --experiment {wildcards.exp} --shards {input.shards}"
        " --unseen-shards {input.unseen} --out {output.split} > {log} 2>&1"
