"""The domain: simulation, rendering, detection, tracking, baselines, metrics and models.

Pure numpy / scipy / torch. Nothing here imports Prefect, Dask, Zarr or MLflow.
"""
