# Stage 5 — select: train/test split by clip and phoneme-balanced selection (CRAN Algorithm 1).
#
# A checkpoint: the selected list (split.tsv's train clips; selection.json's `selected`, in
# Algorithm 1's rank order) is only known once it has run. Today no job's *inputs* depend on
# which clips were chosen: pretrain, train, generate_test and evaluate read split.tsv, and report
# reads selection.json, as files (`rules.select.output.*`), which a checkpoint's outputs may be.
# A rule whose inputs would follow from the selected list (e.g. one job per selected clip) must
# ask `checkpoints.select.get(exp=wildcards.exp)` in an input function instead. Not done where
# it is not needed: while select is pending, such an input shows up as "set of input files
# changed" in `snakemake --summary` (tests/test_workflow_rules.py records the rerun triggers).


checkpoint select:
    input:
        shards=exp_shards,
        shard_list=shard_list("speakers"),
        unseen=exp_unseen_shards,
    output:
        split=f"{RESULTS}/{{exp}}/split.tsv",
        selection=f"{RESULTS}/{{exp}}/selection.json",  # phoneme histograms before/after, distances
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
        "{params.a2v} select {params.args} --experiment {wildcards.exp} --shards @{input.shard_list}"
        " --unseen-shards {input.unseen} --out {output.split} --selection-out {output.selection} > {log} 2>&1"
