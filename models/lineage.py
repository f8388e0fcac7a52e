"""Which MLflow runs were trained on which data: the runs a `lakecast forget` leaves for the user.

Training logs the Delta version of `observations` it read (tag and param
`lakecast.observations_delta_version` / `observations_delta_version`) and the table
(`lakecast.table`). A run whose version predates the DELETE of a series was trained on data
that included it; its model weights and artifacts (the forecasts figure) may still reflect it.
Deleting or keeping those runs and their registered versions is the user's decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from conf import LakecastConfig

VERSION_TAG, VERSION_PARAM, TABLE_TAG = "lakecast.observations_delta_version", "observations_delta_version", \
    "lakecast.table"


@dataclass(frozen=True)
class TrainedRun:
    """An MLflow training run and the observations version it read."""

    run_id: str
    observations_version: int
    run_name: str


def runs_trained_before(cfg: LakecastConfig, table: str, version: int) -> list[TrainedRun]:
    """Runs of the configured experiment that trained on `table` at a version older than `version`."""
    import mlflow

    from models.registry import use_tracking

    use_tracking(cfg)
    runs = mlflow.search_runs(experiment_names=[cfg.mlflow.experiment], output_format="list",
                              filter_string=f"tags.`{TABLE_TAG}` = '{table}'")
    found = []
    for run in runs:
        raw = run.data.tags.get(VERSION_TAG, run.data.params.get(VERSION_PARAM))
        if raw is not None and raw.lstrip("-").isdigit() and int(raw) < version:
            found.append(TrainedRun(run.info.run_id, int(raw), run.info.run_name or ""))
    return sorted(found, key=lambda r: (r.observations_version, r.run_id))
