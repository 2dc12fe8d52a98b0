"""Evaluation of any ``PersistenceScorer``: ``metrics`` (the maths: decisions after k
observations, thresholds, TOC, calibration), ``report`` (``build_report`` and its tables),
``plots`` (report figures) and ``visualize`` (contact sheets and GIFs of videos)."""
