"""The domain: pure numpy / scipy / torch, no Prefect, Dask, Zarr or MLflow.

Subsystems, each importing only from those below it (top floor first):

    serving      online scorer (one frame at a time), rows scored in batch, the served pyfunc
    model        magvit    the modular persistence model; the MagVit video tokenizer
    scorers      classical confirmation (M-of-N, track score, clutter map, IPDA, boosting)
    evaluation   metric maths, the report and its tables, figures and previews
    tracks       any tracker's tracks: files, rows, padded arrays, features, labels by matching
    perception   detection, tracking and ground-truth labels of the synthetic videos
    world        the synthetic world: its config, simulation, rendering and splits
    core         the track batch, the scorer interface, config and device helpers
"""
