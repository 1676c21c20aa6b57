"""Phoneme inventory, train/test split and phoneme-balanced sample selection (CRAN §3.3)."""
