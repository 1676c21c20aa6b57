"""Rule shard_list: the shard paths of a dataset, one per line (the rules' `--shards @FILE`).

Run by Snakemake's `script:` directive (the `snakemake` object holds input, output and log), so the
list never passes through a command line: 6,000 paths would exceed Linux's 128 KiB per argument.
"""

from pathlib import Path

shards = list(snakemake.input.shards)  # noqa: F821 - injected by Snakemake
Path(snakemake.output[0]).write_text("".join(f"{p}\n" for p in shards))  # noqa: F821
Path(snakemake.log[0]).write_text(f"{len(shards)} shards\n")  # noqa: F821
