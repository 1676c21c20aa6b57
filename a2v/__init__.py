"""a2v — audio-driven talking-face generation: corpus to metrics table.

The package holds all real code; Snakemake rules in ``workflow/rules`` only call
its entry points (``python -m a2v <command>``).
"""

__version__ = "0.1.0"
