# Stage 6b — the metric networks ("judges"): the dataset's split (top-level select settings),
# then a LipNet lip-reader (WER) and a SyncNet (LSE-C/D) trained on its non-test clips. One GPU
# job each per dataset, shared by its experiments. With `<judge>.weights` set, evaluate uses
# those weights and nothing is trained.


rule select_dataset:
    input:
        shards=lambda wildcards: dataset_shards(wildcards.dataset),
        shard_list=shard_list("speakers"),
    output:
        split=f"{RESULTS}/{{dataset}}/lipreader_split.tsv",
    log:
        f"{RESULTS}/logs/select_dataset/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/select_dataset/{{dataset}}.tsv"
    conda:
        "../envs/preprocess.yaml"
    params:
        a2v=A2V,
        args=CONFIG_ARGS,
        settings=settings_of("select"),  # the top-level select settings only
    shell:
        "{params.a2v} select {params.args} --shards @{input.shard_list} --out {output.split} > {log} 2>&1"


rule train_judge:
    input:
        split=rules.select_dataset.output.split,
        shards=lambda wildcards: dataset_shards(wildcards.dataset),
        shard_list=shard_list("speakers"),
    output:
        checkpoint=f"{RESULTS}/{{judge}}/{{dataset}}/checkpoint.pt",
    log:
        f"{RESULTS}/logs/train_judge/{{judge}}_{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_judge/{{judge}}_{{dataset}}.tsv"
    conda:
        "../envs/train.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=12 * 60,
    params:
        a2v=A2V,
        args=CONFIG_ARGS,
        out_dir=lambda wildcards: f"{RESULTS}/{wildcards.judge}/{wildcards.dataset}",
        settings=settings_of("{judge}"),  # lipreader or syncnet
    shell:
        "{params.a2v} train-judge {params.args} {wildcards.judge} --split {input.split} --shards @{input.shard_list}"
        " --out-dir {params.out_dir} > {log} 2>&1"
