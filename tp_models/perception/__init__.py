"""Perception of the synthetic videos: ``detect.detect`` (connected components),
``tracker.track_detections`` (Kalman + gated assignment) and ``labels`` (each track's
ground-truth kind, tracking-quality counts)."""
