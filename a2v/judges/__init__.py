"""The judges: networks that score generated video and never train a generator.

* :class:`~a2v.judges.lipreader.LipReader` — WER by a LipNet lip-reader;
* :class:`~a2v.judges.syncnet.SyncScorer` — LSE-D / LSE-C / AV offset by a SyncNet;
* :mod:`a2v.judges.ctc` — the lip-reader's CTC decoders (greedy, GRID grammar).

They are trained by the pipeline (:mod:`a2v.training.lipreader`, :mod:`a2v.training.syncnet`,
rule ``train_judge``) on the dataset's non-test clips; evaluation imports them from here.
"""

from a2v.judges.ctc import GrammarDecoder, greedy_decode
from a2v.judges.lipreader import LipReader, clip_sentence
from a2v.judges.syncnet import SyncScorer

__all__ = ["GrammarDecoder", "LipReader", "SyncScorer", "clip_sentence", "greedy_decode"]
