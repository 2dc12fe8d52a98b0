"""MLflow's entry point for every model tp logs: packaged with each model as its pyfunc
`loader_module`, ``tp_pyfunc`` (see `storage.mlflow_store.log_and_register`).

MLflow calls ``_load_pyfunc(data_path)`` with the model's checkpoint file; the domain's
served form (`tp_models.serving.served`) reads it weights-only. A request the model cannot
score is answered as MLflow answers its own bad requests, a 400 whose message is the one
sentence naming the column to fix, without the stack trace (and the server paths in it)
MLflow attaches to any other exception.
"""

from __future__ import annotations

from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import BAD_REQUEST

from tp_models.serving.served import ServedInputError, load_served


class BadRequestsAnswered:
    """A served model whose input errors are MLflow's bad requests."""

    def __init__(self, served: Any) -> None:
        self.served = served

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        try:
            return self.served.predict(model_input, params)
        except ServedInputError as error:
            raise MlflowException(str(error), error_code=BAD_REQUEST) from None

    def __getattr__(self, name: str) -> Any:  # e.g. the threshold or pipeline of the model
        return getattr(self.served, name)


def _load_pyfunc(data_path: str) -> BadRequestsAnswered:
    return BadRequestsAnswered(load_served(data_path))
