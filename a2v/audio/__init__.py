"""Audio features indexed by video frame (MFCC, mel, F0, energy) on one shared time base."""
