"""The synthetic world: ``config.SceneConfig`` (with the video types and the operating point
each video draws), ``simulate.simulate`` (ground truth), ``render`` (pixels and id masks) and
``splits.split_videos`` (train / val / test / held-out, by video)."""
