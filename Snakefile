# a2v — from corpus to metrics table, as one Snakemake workflow.
#
#   snakemake --cores 32 results/man_grid/metrics.csv                        # the real run
#   snakemake --cores 2 --configfile config/config.yaml config/demo.yaml \
#             --profile profiles/default results/man_grid/metrics.csv        # make demo
#
# Rules are thin: each calls `python -m a2v <stage>` (see a2v/cli.py), which works without
# Snakemake too. The configuration is validated against workflow/schemas/config.schema.yaml.

from snakemake.utils import min_version, validate

min_version("9.0")

configfile: "config/config.yaml"

validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/select.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/judges.smk"
include: "workflow/rules/evaluate.smk"


rule all:
    input:
        expand(f"{RESULTS}/{{exp}}/report.html", exp=config["experiments"]),
        expand(f"{RESULTS}/{{dataset}}/preprocess_summary.tsv",
               dataset=sorted({exp_dataset(e) for e in config["experiments"]})),
    default_target: True
