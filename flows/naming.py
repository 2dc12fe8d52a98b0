"""Flow runs named by stage and subject (`evaluate-v7`, `train-statistical-seed0`), so the
Prefect UI's run list says what each run did instead of Prefect's random names.

Each flow names its own run once it knows the subject (the version an alias names is
known only after a registry look-up), rather than by a `flow_run_name` template: a
deployment passes the spec as a plain dict, which a template's attribute access would fail on.
"""

from __future__ import annotations

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.runtime import flow_run


def name_flow_run(name: str) -> None:
    """Rename the current flow run (a no-op outside one)."""
    run_id = flow_run.get_id()
    if run_id is None:
        return
    with get_client(sync_client=True) as client:
        client.set_flow_run_name(run_id, name=name)
    get_run_logger().info("flow run named %s", name)
