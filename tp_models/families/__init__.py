"""Every scorer a model: the classical families fitted, calibrated, streamed and saved as
plain data, beside the learned model. ``names`` (the families, importable anywhere),
``fit`` (fitting and calibrating on a store's splits), ``fitted`` (the deployable form and
its checkpoint), ``streams`` (each family one frame at a time)."""
