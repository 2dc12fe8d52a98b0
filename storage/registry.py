"""The model registry: its names, aliases and URIs (spelled here only), who holds
`@champion`, and the record of every decision.

A decision (the gate's verdict, both models' test metrics, the gate itself, who decided)
is written where each reader looks: tags on both model versions and on both evaluation
runs, and the challenger's version description. `tasks.promotion` decides; this module
only reads and writes the registry.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from storage.errors import ParameterError, StoreError

MODEL_NAME = "track-persistence"
TOKENIZER_NAME = "magvit-tokenizer"
CANDIDATE = "candidate"  # the latest trained version
CHAMPION = "champion"  # the version that passed the promotion gate, or was promoted by hand
TAG = "promotion."  # prefix of every decision tag


def version_uri(version: int | str, name: str = MODEL_NAME) -> str:
    """`models:/name/N`: one registered version."""
    return f"models:/{name}/{version}"


def alias_uri(alias: str, name: str = MODEL_NAME) -> str:
    """`models:/name@alias`: whichever version holds the alias when it is read."""
    return f"models:/{name}@{alias}"


_MODEL_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))")


def parse_model_uri(model_uri: str) -> tuple[str, str | None, str | None]:
    """(name, version, alias) of a registry URI, exactly one of version and alias set."""
    found = _MODEL_URI.fullmatch(model_uri.strip())
    if found is None:
        raise ParameterError(
            f"model_uri: {model_uri!r} is not a registered model; give models:/NAME/VERSION "
            f"or models:/NAME@ALIAS (e.g. {alias_uri(CHAMPION)})."
        )
    return found["name"], found["version"], found["alias"]


@dataclass(frozen=True)
class Decision:
    """What was decided about `challenger` (a version) against `champion` (None: first)."""

    challenger: str
    champion: str | None
    promoted: bool
    reason: str
    decided_by: str  # "gate" or "hand"
    gate: dict[str, Any]
    metrics: dict[str, dict[str, float]]  # version -> flat test metrics
    evaluation_runs: dict[str, str]  # version -> evaluate run id
    families: dict[str, str] = field(default_factory=dict)  # version -> family, if known

    @property
    def outcome(self) -> str:
        if self.champion is None:
            return "first champion"
        return "promoted" if self.promoted else "champion kept"

    def tags(self) -> dict[str, str]:
        return {
            f"{TAG}outcome": self.outcome,
            f"{TAG}reason": self.reason[:5000],
            f"{TAG}decided_by": self.decided_by,
            f"{TAG}challenger": self.challenger,
            f"{TAG}champion_before": self.champion or "none",
            f"{TAG}gate": json.dumps(self.gate, sort_keys=True),
            f"{TAG}families": json.dumps(self.families, sort_keys=True),
            **{
                f"{TAG}metrics.v{version}": json.dumps(values, sort_keys=True)[:5000]
                for version, values in self.metrics.items()
            },
        }

    def description(self) -> str:
        against = f"champion v{self.champion}" if self.champion else "no champion (first model)"
        family = self.families.get(self.challenger)
        challenger = f"v{self.challenger}" + (f" ({family})" if family else "")
        return (
            f"{self.outcome}: {challenger} against {against}, decided by {self.decided_by}. "
            f"{self.reason} Gate: {json.dumps(self.gate, sort_keys=True)}."
        )


def version_family(version: str, name: str = MODEL_NAME) -> str:
    """The family a registered version is tagged with (versions from before families were
    tagged are the learned model)."""
    from mlflow import MlflowClient

    return MlflowClient().get_model_version(name, version).tags.get("family", "model")


def champion_version(name: str = MODEL_NAME) -> str | None:
    """The version holding `@champion`, or None when there is none yet."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return str(MlflowClient().get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def require_version(version: int | str, name: str = MODEL_NAME) -> str:
    """`version` as a string if it is registered under `name`, else StoreError."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        MlflowClient().get_model_version(name, str(version))
    except MlflowException:
        raise StoreError(
            f"model {name} has no version {version}; pick one that `mlflow ui` lists under "
            f"{name} (or train one with `tp train`)."
        ) from None
    return str(version)


HEADLINE_TAG = "headline."  # prefix of a version's headline metrics (see headline_tags)


def headline_tags(values: dict[str, float], judged_by: str, run_id: str) -> dict[str, str]:
    """Tags of a model version: its headline metrics (glossary names) and the run that
    measured them (an evaluate run, or the training run's test-split check)."""
    return {
        f"{HEADLINE_TAG}judged_by": judged_by,
        f"{HEADLINE_TAG}judged_by_run_id": run_id,
        **{f"{HEADLINE_TAG}{name}": f"{value:.4g}" for name, value in values.items()},
    }


def describe(tags: dict[str, str]) -> str:
    """A version's description, in words, from its tags: the decision about it as a
    challenger, what it is, what it was trained on, and its headline metrics."""
    parts = []
    if f"{TAG}own_decision" in tags:  # the decision about this version as the challenger
        parts.append(tags[f"{TAG}own_decision"])
    if "features" in tags:
        get = tags.get
        parts.append(
            f"A {get('family', '?')} on {tags['features']} features, training seed "
            f"{get('training.seed', '?')}, trained by run {get('training.run_name', '?')} "
            f"on data {get('data.fingerprint', '?')} (split_seed {get('data.split_seed', '?')})."
        )
    headline = {
        key.removeprefix(HEADLINE_TAG): value
        for key, value in tags.items()
        if key.startswith(HEADLINE_TAG) and not key.startswith(f"{HEADLINE_TAG}judged_by")
    }
    if headline:
        values = ", ".join(f"{name} {value}" for name, value in headline.items())
        parts.append(f"Test split, by {tags.get(f'{HEADLINE_TAG}judged_by', '?')}: {values}.")
    return "\n\n".join(parts)


def tag_version(version: str, tags: dict[str, str], name: str = MODEL_NAME) -> None:
    """Add `tags` to a version and rewrite its description from all its tags."""
    from mlflow import MlflowClient

    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value)[:5000])
    all_tags = client.get_model_version(name, version).tags
    client.update_model_version(name, version, description=describe(all_tags))


def record(decision: Decision, name: str = MODEL_NAME) -> None:
    """Write the decision to both versions and both evaluation runs; move `@champion` if
    the challenger was promoted (or is the first model)."""
    from mlflow import MlflowClient

    client = MlflowClient()
    tags = decision.tags()
    # Every version that took part (each family's challenger and the champion).
    for version in {decision.challenger, decision.champion, *decision.metrics} - {None}:
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
    for run_id in decision.evaluation_runs.values():
        for key, value in tags.items():
            client.set_tag(run_id, key, value)
    # The challenger keeps the decision about itself (its description leads with it); the
    # promotion.* tags of either version say the latest decision it took part in.
    tag_version(decision.challenger, {f"{TAG}own_decision": decision.description()[:5000]}, name)
    if decision.promoted:
        client.set_registered_model_alias(name, CHAMPION, decision.challenger)
