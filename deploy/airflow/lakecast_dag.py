"""Airflow DAGs for lakecast: daily ingest -> predict -> evaluate, weekly train -> promote.

Every task runs a lakecast job script through spark-submit (the same entry point as
`lakecast <job>`), with the Spark settings that `lakecast spark-conf` writes from the
lakecast configuration, and the run's data interval end as `--as-of`: the run for
2024-05-01 forecasts from the last grid step at or before 2024-05-02T00:00Z.

Airflow is not a lakecast dependency. Where the scheduler runs, install `apache-airflow`
and, for SparkSubmitOperator, `apache-airflow-providers-apache-spark` (without it the tasks
fall back to BashOperator running spark-submit), and the lakecast checkout with its venv.
Drop this file into the DAGs folder and set, in the scheduler's and workers' environment:

  LAKECAST_REPO  the lakecast checkout (default /opt/lakecast/app)
  LAKECAST_CONF  the config file, relative to the checkout (default conf/cluster.yaml)
  LAKECAST_RAW   landing folder with one sub-folder per day, YYYY-MM-DD (default /data/landing)
  LAKECAST_BIN   the venv's bin folder with lakecast and spark-submit (default /opt/lakecast/venv/bin)
  LAKECAST_SPARK_CONN  the Airflow Spark connection for SparkSubmitOperator (default lakecast_spark:
                 create it with host spark://spark-master, port 7077; `spark_default` means YARN)

The spark_conf task writes the properties file to /tmp on its worker: run the DAG's tasks on one
worker (a queue of their own) or point the path at shared storage.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from airflow import DAG

try:  # Airflow 3 moved the core operators into the standard provider
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator  # type: ignore[no-redef]

try:
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
except ImportError:  # Airflow 2
    from airflow.operators.trigger_dagrun import TriggerDagRunOperator  # type: ignore[no-redef]

try:
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
except ImportError:
    SparkSubmitOperator = None


def _setting(name: str, default: str) -> str:
    # Environment only: Airflow Variables at parse time would query the metadata database on
    # every parse of this file.
    return os.environ.get(name, default)


REPO = _setting("LAKECAST_REPO", "/opt/lakecast/app")
CONF = _setting("LAKECAST_CONF", "conf/cluster.yaml")
RAW = _setting("LAKECAST_RAW", "/data/landing")
BIN = _setting("LAKECAST_BIN", "/opt/lakecast/venv/bin")
# An Airflow Spark connection whose host is the cluster's master (e.g. spark://spark-master:7077);
# Airflow's own `spark_default` points at YARN.
SPARK_CONN = _setting("LAKECAST_SPARK_CONN", "lakecast_spark")
PROPERTIES = "/tmp/lakecast-{{ run_id | replace(':', '_') | replace('+', '_') }}.properties"
AS_OF = "{{ data_interval_end | ts }}"

DEFAULT_ARGS = {
    "owner": "data-platform",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
}


def spark_conf_task() -> BashOperator:
    """Write this run's spark-submit settings from the lakecast configuration."""
    return BashOperator(
        task_id="spark_conf",
        bash_command=f"cd {REPO} && {BIN}/lakecast spark-conf --conf {CONF} --out {PROPERTIES}",
    )


def job_task(job: str, *args: str) -> Any:
    """spark-submit jobs/<job>.py ARGS --conf CONF, with the properties of `spark_conf`."""
    application = f"{REPO}/jobs/{job}.py"
    app_args = [*args, "--conf", CONF]
    # The venv first on PATH: its spark-submit, and the python that finds pyspark's Spark home.
    env = {"PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
           "PYSPARK_PYTHON": f"{BIN}/python", "PYSPARK_DRIVER_PYTHON": f"{BIN}/python"}
    if SparkSubmitOperator is not None:
        return SparkSubmitOperator(
            task_id=job, application=application, application_args=app_args,
            properties_file=PROPERTIES, name=f"lakecast-{job}", env_vars=env, conn_id=SPARK_CONN,
        )
    quoted = " ".join(f"'{a}'" for a in app_args)
    return BashOperator(
        task_id=job, env=env, append_env=True,
        bash_command=f"cd {REPO} && spark-submit --properties-file {PROPERTIES} {application} {quoted}",
    )


def lakecast_dag(dag_id: str, description: str, schedule: str) -> DAG:
    """A lakecast DAG: one run at a time, no catch-up (use `lakecast backfill` for history)."""
    return DAG(dag_id=dag_id, description=description, schedule=schedule, start_date=datetime(2024, 1, 1),
               catchup=False, max_active_runs=1, default_args=DEFAULT_ARGS, tags=["lakecast"])


with lakecast_dag("lakecast_daily", "Ingest the day's files, forecast every series with the champion model, "
                  "then hold the forecasts to account on the actuals that arrived", "15 0 * * *") as daily:
    conf = spark_conf_task()
    ingest = job_task("ingest", f"{RAW}/{{{{ ds }}}}", "--freq", "h", "--as-of", AS_OF)
    # The challenger is scored in shadow beside the champion, so `promote --by live` has evidence.
    predict = job_task("predict", "--shadow", "--as-of", AS_OF)
    # Fails (and alerts, as any failed task) when the champion's live accuracy breaches monitor.*.
    evaluate = job_task("evaluate", "--fail-on-alert")
    # ... and then trains a challenger early, without waiting for Monday.
    retrain = TriggerDagRunOperator(task_id="retrain_on_alert", trigger_dag_id="lakecast_weekly_train",
                                    trigger_rule="one_failed")
    conf >> ingest >> predict >> evaluate >> retrain


with lakecast_dag("lakecast_weekly_train",
                  "Train a challenger on all data, then let the promotion rule decide the champion",
                  "30 1 * * 1") as weekly:
    conf = spark_conf_task()
    train = job_task("train", "--as-of", AS_OF)
    promote = job_task("promote", "--as-of", AS_OF)
    conf >> train >> promote
