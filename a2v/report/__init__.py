"""a2v.report — the per-experiment HTML report: figures (matplotlib) and the page."""
