"""What every subsystem shares: ``batch.TrackBatch`` (and ``TrackMeta``, evaluation's
view), ``scorer.PersistenceScorer`` (the one scoring interface), ``config.known_fields``
and ``device.resolve_device``."""
