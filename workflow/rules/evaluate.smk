# Stages 7–8 — generate a video for every test clip, then the per-clip metrics and metrics.csv.


rule generate_test:
    input:
        checkpoint=lambda wildcards: final_checkpoint(wildcards.exp),
        split=rules.select.output.split,
        shards=exp_shards,
    output:
        listing=f"{RESULTS}/{{exp}}/videos/videos.tsv",
    log:
        f"{RESULTS}/logs/generate_test/{{exp}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/generate_test/{{exp}}.tsv"
    conda:
        "../envs/train.yaml"
    resources:
        gpu=1,
    params:
        a2v=A2V,
        args=CONFIG_ARGS,
        out_dir=lambda wildcards: f"{RESULTS}/{wildcards.exp}/videos",
    shell:
        "{params.a2v} generate-test {params.args} --checkpoint {input.checkpoint} --split {input.split}"
        " --shards {input.shards} --out-dir {params.out_dir} 2> {log}"


rule evaluate:
    input:
        videos=rules.generate_test.output.listing,
        split=rules.select.output.split,
        shards=exp_shards,
        reference=config.get("evaluate", {}).get("reference_metrics", "config/reference_metrics.yaml"),
    output:
        metrics=f"{RESULTS}/{{exp}}/metrics.csv",
        per_clip=f"{RESULTS}/{{exp}}/metrics/per_clip.csv",
    log:
        f"{RESULTS}/logs/evaluate/{{exp}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{exp}}.tsv"
    conda:
        "../envs/preprocess.yaml"
    params:
        a2v=A2V,
        args=CONFIG_ARGS,
        out_dir=lambda wildcards: f"{RESULTS}/{wildcards.exp}",
        videos=lambda wildcards: f"{RESULTS}/{wildcards.exp}/videos",
    shell:
        "{params.a2v} evaluate {params.args} --experiment {wildcards.exp} --split {input.split}"
        " --shards {input.shards} --videos {params.videos} --out-dir {params.out_dir} 2> {log}"
