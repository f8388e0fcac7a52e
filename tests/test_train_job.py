"""`lakecast train` and `lakecast promote` as jobs: Spark windows -> torch -> MLflow -> registry -> job_runs.

One tiny database, a few seasonal series, a tiny network; the steps run in order in one test
because each builds on the registry state the previous one left.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
import torch

from models import promote, registry
from models.lakecast_forecaster.predictor import load_predictor
from models.registry import CHALLENGER, CHAMPION, ModelNotFoundError
from pipelines.flows import promote as promote_job
from pipelines.flows import train as train_job
from pipelines.tables.ensure import ensure_tables
from tests.conftest import make_config
from tests.scoring_helpers import write_observations

torch.set_num_threads(1)
T0 = datetime(2024, 3, 1)
HOURS = 20 * 24
TINY = ("windows.lookback=48", "windows.horizon=12", "windows.stride=12", "train.val_periods=48",
        "train.test_periods=48", "promote.backtest_periods=48", "model.hidden_size=8", "model.num_layers=1",
        "train.max_epochs=3", "train.batch_size=32", "train.learning_rate=0.01", "train.torch_threads=1",
        "train.plot_series=2", "train.device=cpu")


def _rows() -> list[tuple[str, datetime, float]]:
    rng = np.random.default_rng(0)
    rows = []
    for s in range(4):
        level = 20.0 * (s + 1)
        for i in range(HOURS):
            v = level * (1 + 0.3 * np.sin(2 * np.pi * i / 24 + s)) + rng.normal(0, 0.5)
            rows.append((f"s{s}", T0 + timedelta(hours=i), float(v)))
    return rows


def _job_run(spark: Any, cfg: Any, run_id: str) -> Any:
    return spark.table(cfg.table("job_runs")).where(f"run_id = '{run_id}'").head()


def test_train_register_promote_rollback(spark: Any, lakecast_home: Any) -> None:
    import mlflow

    from models.precision import BF16, guard_allows

    tag = uuid.uuid4().hex[:8]
    cfg = make_config(lakecast_home, f"catalog.database=t_{tag}", f"model.name=m_{tag}",
                      f"mlflow.experiment=e_{tag}", *TINY)
    ensure_tables(spark, cfg)
    obs_version = write_observations(spark, cfg, _rows())

    # 1. train: v1 becomes challenger and champion; everything is logged and recorded
    out = train_job.run(spark, cfg)
    assert (out.model.version, out.became_champion) == ("1", True)
    assert registry.aliases(cfg) == {CHAMPION: "1", CHALLENGER: "1"}
    assert out.cutoffs.end == T0 + timedelta(hours=HOURS - 1)
    assert out.backtest.n_windows == 4 * 4 and out.result.n_train > 50
    row = _job_run(spark, cfg, out.job_run_id)
    assert row.status == "succeeded" and row.versions_read == {"observations": obs_version}
    assert row.row_counts["test_windows_usable"] == 16
    details = json.loads(row.details)
    assert details["model_version"] == "1" and details["mlflow_run_id"] == out.mlflow_run_id
    client = registry.client(cfg)
    run = client.get_run(out.mlflow_run_id)
    assert run.data.params["observations_delta_version"] == str(obs_version)
    assert run.data.params["model.hidden_size"] == "8"
    assert "test_lstm_mase" in run.data.metrics and "test_seasonal_naive_mase" in run.data.metrics
    assert len(client.get_metric_history(out.mlflow_run_id, "val_loss")) == len(out.result.history)
    assert len(client.get_metric_history(out.mlflow_run_id, "test_lstm_mae_by_step")) == 12
    # the p10/p90 calibration fitted on the validation windows: logged, recorded and inside the model
    assert {"calibration.low_factors", "calibration.high_factors"} <= set(run.data.params)
    assert len(client.get_metric_history(out.mlflow_run_id, "interval_high_factor_by_step")) == 12
    assert details["val_coverage_after_calibration"] == pytest.approx(
        run.data.metrics["val_coverage_after_calibration"], abs=1e-4)
    calibration = load_predictor(registry.download_version(cfg, out.model)).meta.calibration
    assert calibration is not None and calibration.horizon == 12
    assert ",".join(f"{v:.4g}" for v in calibration.low) == run.data.params["calibration.low_factors"]
    assert {"forecasts_vs_actuals.png", "config.json", "backtest.json"} <= {
        a.path for a in client.list_artifacts(out.mlflow_run_id)}
    v1 = registry.resolve(cfg, version="1")
    assert v1.tags["lakecast.observations_delta_version"] == str(obs_version)
    assert v1.run_id == out.mlflow_run_id
    # the precision guard ran at train time and its verdict is on the version (scoring reads it)
    assert v1.tags["lakecast.precision.tolerance"] == "0.005" and "lakecast.precision.fp32.mase" in v1.tags
    # the stored verdict is the guard's own reading of the stored differences at that tolerance
    assert v1.tags["lakecast.precision.bf16.ok"] == str(guard_allows(v1.tags, BF16, 0.005)[0]).lower()

    # 2. a second model (as of a day earlier, another seed): the rule decides, on the same windows.
    # A margin of 1 asks the challenger for a MASE <= 0, which no noisy series allows: it must be kept.
    cfg2 = make_config(lakecast_home, f"catalog.database=t_{tag}", f"model.name=m_{tag}",
                       f"mlflow.experiment=e_{tag}", *TINY, "train.seed=7", "model.statistical_blend_power=2")
    as_of = (T0 + timedelta(hours=HOURS - 25)).isoformat()
    out2 = train_job.run(spark, cfg2, as_of=as_of)
    assert out2.model.version == "2" and not out2.became_champion
    # the blend's power travels from the configuration into the model and MLflow (v1: the default 1)
    metas = [load_predictor(registry.download_version(cfg, registry.resolve(cfg, version=v))).meta
             for v in ("1", "2")]
    blends = [m.blend for m in metas]
    # hourly members read four weeks whatever the network's lookback (48 here): the rest is context
    assert [m.lookback for m in metas] == [672, 672] and [m.network.lookback for m in metas] == [48, 48]
    assert [b.power for b in blends if b is not None] == [1.0, 2.0]
    # hourly steps: the damped-trend member is left out of the blend, the naive one in (conf.auto_steps.blend_skips)
    assert all("damped" not in b.members and {"theta", "naive"} <= set(b.members) for b in blends if b is not None)
    assert client.get_run(out2.mlflow_run_id).data.params["blend.power"] == "2.0"
    assert out2.cutoffs.end == T0 + timedelta(hours=HOURS - 25)
    assert registry.aliases(cfg) == {CHAMPION: "1", CHALLENGER: "2"}
    strict = make_config(lakecast_home, f"catalog.database=t_{tag}", f"model.name=m_{tag}",
                         f"mlflow.experiment=e_{tag}", *TINY, "promote.mase_margin=1.0")
    p = promote_job.run(spark, strict)
    assert p.comparison is not None and p.comparison.n_windows == 16
    assert p.challenger is not None and p.champion is not None
    assert (p.decision.outcome, p.decision.champion) == (promote.KEPT, "1"), p.decision.reason
    assert p.decision.reason.startswith("not enough better than the champion")
    # exactly what the rule decides on the comparison the job made (no registry change in `decide`)
    assert p.decision == promote.decide(strict, p.challenger, p.champion, p.comparison)
    assert registry.aliases(cfg) == {CHAMPION: "1", CHALLENGER: "2"}
    v2 = registry.resolve(cfg, version="2").tags
    assert v2["promotion.decision"] == p.decision.outcome
    assert v2["lakecast.precision.windows"] == str(p.comparison.n_windows)  # re-checked at promote
    recorded = json.loads(_job_run(spark, cfg, p.job_run_id).details)
    assert recorded["decision"] == p.decision.outcome and recorded["candidate"] == "2"

    # 3. v2 pinned on purpose against the rule's verdict, then rolled back to v1
    p = promote_job.run(spark, cfg, version=2)
    assert (p.decision.outcome, p.decision.previous_champion, p.decision.champion) == (promote.PINNED, "1", "2")
    assert registry.aliases(cfg)[CHAMPION] == "2"
    p = promote_job.run(spark, cfg, version=1)
    assert (p.decision.outcome, p.decision.previous_champion, p.decision.champion) == (promote.PINNED, "2", "1")
    assert registry.aliases(cfg)[CHAMPION] == "1"

    # 4. a missing model is a clear error, recorded as a failed run
    missing = make_config(lakecast_home, f"catalog.database=t_{tag}", f"model.name=absent_{tag}", *TINY)
    with pytest.raises(ModelNotFoundError, match=rf"registered model 'absent_{tag}' not found"):
        promote_job.run(spark, missing)
    failed = spark.table(cfg.table("job_runs")).where("job = 'promote' AND status = 'failed'").collect()
    assert len(failed) == 1 and "ModelNotFoundError" in failed[0].error
    assert mlflow.get_tracking_uri() == cfg.tracking_uri
