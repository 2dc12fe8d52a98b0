"""Scoring where the tracker runs: ``online.OnlineScorer`` (one frame at a time),
``rows.score_rows`` (a whole table at once) and ``served`` (the MLflow pyfunc)."""
