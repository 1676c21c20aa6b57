"""Pipeline stages: each is a function a Snakemake rule (or a user) calls through ``python -m a2v``.

A stage loops over clips with a progress bar, skips a bad clip with a log line naming the file
and the cause (the others go on), lists every clip's outcome in a summary TSV, and writes its
outputs atomically.
"""
