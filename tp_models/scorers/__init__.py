"""Classical track confirmation as ``PersistenceScorer``s: ``counting`` (M-of-N, length,
motion gate), ``track_score`` (Blackman's SPRT), ``clutter_map``, ``existence`` (IPDA and
the parameter oracle), ``boosting`` (gradient boosting on the track features), ``tuning``
(grid search on train) and ``roster`` (the contest set)."""
