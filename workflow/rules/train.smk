# Stage 6 — train: one GPU job per curriculum phase; phase k starts from phase k-1's checkpoint.
# Runs on the CPU when no GPU is present. Resumes from its last.pt after a kill.


rule pretrain:
    """A network the experiment's losses use (e.g. OneShotA2V's sync discriminator), trained on the
    experiment's training clips by its own rule, before phase 1."""
    input:
        split=rules.select.output.split,
        shards=exp_shards,
        shard_list=shard_list("speakers"),
    output:
        checkpoint=f"{RESULTS}/{{exp}}/pretrained/{{network}}/checkpoint.pt",
    log:
        f"{RESULTS}/logs/pretrain/{{exp}}_{{network}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/pretrain/{{exp}}_{{network}}.tsv"
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
        out_dir=lambda wildcards: f"{RESULTS}/{wildcards.exp}/pretrained/{wildcards.network}",
        settings=exp_settings_of("pretrained"),  # editing any pretrained section reruns
    shell:
        "{params.a2v} pretrain {params.args} --experiment {wildcards.exp} --network {wildcards.network}"
        " --split {input.split} --shards @{input.shard_list} --out-dir {params.out_dir} > {log} 2>&1"


rule train:
    input:
        unpack(lambda wildcards: exp_pretrained(wildcards)),
        split=rules.select.output.split,
        shards=exp_shards,
        shard_list=shard_list("speakers"),
        init=previous_checkpoint,
    output:
        checkpoint=f"{RESULTS}/{{exp}}/phase{{phase}}/checkpoint.pt",
    log:
        f"{RESULTS}/logs/train/{{exp}}_phase{{phase}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{exp}}_phase{{phase}}.tsv"
    conda:
        "../envs/train.yaml"
    threads: 2 * TRAIN_PROCESSES
    resources:
        gpu=TRAIN_PROCESSES,
        mem_mb=16000,
        runtime=24 * 60,
    params:
        a2v=A2V_TRAIN,
        args=CONFIG_ARGS,
        init=lambda wildcards, input: f"--init {input.init[0]}" if input.init else "",
        pretrained=pretrained_args,
        out_dir=lambda wildcards: f"{RESULTS}/{wildcards.exp}/phase{wildcards.phase}",
        settings=exp_settings,  # editing the experiment's settings reruns its training
    shell:
        "{params.a2v} train {params.args} --experiment {wildcards.exp} --phase {wildcards.phase}"
        " --split {input.split} --shards @{input.shard_list} --out-dir {params.out_dir} {params.init}"
        " {params.pretrained} > {log} 2>&1"
