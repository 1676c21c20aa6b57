"""Corpus adapters: each knows its layout, speaker ids and transcripts, and yields clip records."""
