"""What every subsystem shares: ``batch.TrackBatch`` (and ``TrackMeta``, evaluation's
view), ``scorer.PersistenceScorer`` (the one scoring interface), ``config.known_fields``,
``device.resolve_device``, ``checkpoint.check_state_dict_fits`` and ``lazy.lazy_exports``."""
