# Stages 7–8 — generate a video for every test clip, then the per-clip metrics and metrics.csv
# (WER and LSE-C/D by the dataset's judges, workflow/rules/judges.smk).


rule generate_test:
    input:
        checkpoint=lambda wildcards: final_checkpoint(wildcards.exp),
        split=rules.select.output.split,
        shards=exp_test_shards,
        shard_list=shard_list("all"),
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
        # no settings: generate-test reads no config section; the model and its preprocessing
        # settings come from the checkpoint (an input: retraining reruns this job)
    shell:
        "{params.a2v} generate-test {params.args} --checkpoint {input.checkpoint} --split {input.split}"
        " --shards @{input.shard_list} --out-dir {params.out_dir} > {log} 2>&1"


rule evaluate:
    input:
        videos=rules.generate_test.output.listing,
        split=rules.select.output.split,
        shards=exp_test_shards,
        shard_list=shard_list("all"),
        reference=lambda wildcards: experiment(config, wildcards.exp)["evaluate"].get("reference_metrics", "config/reference_metrics.yaml"),
        lipreader=exp_judge("lipreader"),
        syncnet=exp_judge("syncnet"),
    output:
        metrics=f"{RESULTS}/{{exp}}/metrics.csv",
        per_clip=f"{RESULTS}/{{exp}}/metrics/per_clip.csv",
        ear=f"{RESULTS}/{{exp}}/metrics/ear.csv",
    log:
        f"{RESULTS}/logs/evaluate/{{exp}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{exp}}.tsv"
    conda:
        "../envs/preprocess.yaml"
    params:
        a2v=A2V,
        args=CONFIG_ARGS,
        settings=exp_settings_of("evaluate"),  # top-level evaluate under the experiment's own
        out_dir=lambda wildcards: f"{RESULTS}/{wildcards.exp}",
        videos=lambda wildcards: f"{RESULTS}/{wildcards.exp}/videos",
        judges=judge_args,
    shell:
        "{params.a2v} evaluate {params.args} --experiment {wildcards.exp} --split {input.split}"
        " --shards @{input.shard_list} --videos {params.videos} --out-dir {params.out_dir}"
        " {params.judges} > {log} 2>&1"


rule report:
    input:
        metrics=rules.evaluate.output.metrics,
        per_clip=rules.evaluate.output.per_clip,
        ear=rules.evaluate.output.ear,
        videos=rules.generate_test.output.listing,
        shards=exp_test_shards,
        shard_list=shard_list("all"),
        checkpoints=lambda wildcards: phase_checkpoints(wildcards.exp),
        selection=rules.select.output.selection,  # CRAN Fig. 3: phoneme histograms before/after selection
        lipreader=exp_judge("lipreader"),
        syncnet=exp_judge("syncnet"),
    output:
        html=f"{RESULTS}/{{exp}}/report.html",
    log:
        f"{RESULTS}/logs/report/{{exp}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/{{exp}}.tsv"
    conda:
        "../envs/train.yaml"
    params:
        a2v=A2V,
        args=CONFIG_ARGS,
        settings=exp_settings_of("model_type", "dataset", "phases", "evaluate"),  # its facts; the model's come with the checkpoints
        judges=judge_args,
    shell:
        "{params.a2v} report {params.args} --experiment {wildcards.exp} --metrics {input.metrics}"
        " --per-clip {input.per_clip} --ear {input.ear} --videos {input.videos} --shards @{input.shard_list}"
        " --checkpoints {input.checkpoints} --selection {input.selection} {params.judges} --out {output.html} > {log} 2>&1"


# The four papers' models on one dataset (config section `comparison`): one table, one page.
rule model_comparison:
    input:
        metrics=comparison_inputs("metrics"),
        per_clip=comparison_inputs("per_clip"),
        videos=comparison_inputs("videos"),
        shards=comparison_shards,
        shard_list=comparison_shard_list,
    output:
        csv=f"{RESULTS}/model_comparison.csv",
        paired=f"{RESULTS}/model_comparison_paired.csv",
        html=f"{RESULTS}/model_comparison.html",
    log:
        f"{RESULTS}/logs/model_comparison.log",
    benchmark:
        f"{RESULTS}/benchmarks/model_comparison.tsv"
    conda:
        "../envs/preprocess.yaml"
    params:
        a2v=A2V,
        args=CONFIG_ARGS,
        settings=lambda wildcards: config.get("comparison", {}),
        experiments=" ".join(config.get("comparison", {}).get("experiments", [])),
    shell:
        "{params.a2v} compare {params.args} --experiments {params.experiments} --metrics {input.metrics}"
        " --shards @{input.shard_list} --out-csv {output.csv} --out-paired {output.paired} --out-html {output.html} > {log} 2>&1"
