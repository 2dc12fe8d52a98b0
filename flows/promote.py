"""Flow `promote`: make a version the champion by hand, compared with the current champion
and recorded exactly as the `retrain` flow records its gate's decisions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from flows.naming import name_flow_run
from flows.retrain import conclude, evaluate_versions
from storage.errors import ParameterError
from storage.mlflow_store import connect, require_model
from storage.registry import champion_version, require_version, version_uri
from storage.store import Store
from tasks.promotion import decide
from tasks.specs import PromoteSpec, checked_device


def check(spec: PromoteSpec) -> None:
    checked_device(spec.device)
    connect()
    version = require_version(spec.version)
    if version == champion_version():
        raise ParameterError(f"version {version} is already the champion; name another version.")


@flow(name="promote", log_prints=True)
def promote(spec: PromoteSpec) -> dict[str, Any]:
    """Make `spec.version` the champion by hand, compared and recorded as `retrain` does."""
    check(spec)
    name_flow_run(f"promote-v{spec.version}")
    version, champion = str(spec.version), champion_version()
    store = spec.store or require_model(version_uri(version)).get("data.store")
    Store.open(store)  # a clear error if the store is gone
    versions = [version] + ([champion] if champion else [])
    reports = evaluate_versions(versions, store, Path(spec.out), spec.device)
    return conclude(decide(version, champion, reports, spec.gate, by_hand=spec.reason))
