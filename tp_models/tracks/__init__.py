"""Tracks from any tracker: ``files`` (MOTChallenge / CSV in and out), ``table.TrackRows``
(a sequence's rows and the bridge to ``TrackBatch``), ``arrays`` (the store's padded
per-video arrays), ``features`` (the hand-made per-frame track features) and ``matching``
(labels by matching rows to ground truth)."""
