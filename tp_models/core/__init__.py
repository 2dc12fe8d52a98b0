"""What every subsystem shares: ``batch.TrackBatch`` (and ``TrackMeta``, evaluation's
view), ``scorer.PersistenceScorer`` (the one scoring interface), ``config.known_fields``,
``device.resolve_device`` and ``checkpoint.check_state_dict_fits``."""
