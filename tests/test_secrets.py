"""Secrets in the configuration: read from env or file, masked wherever the config is written."""

from __future__ import annotations

import json
import logging
import re
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from conf import ConfigError, LakecastConfig, load_config
from conf.secrets import RedactingFilter, redact, redact_text
from pipelines.session.settings import spark_settings
from pipelines.session.submit import write_properties
from pipelines.sinks.job_runs import RunRecord
from tests.conftest import run_cli
from tests.demo_runs import SECRET, DemoRun

PASSWORD = "pw-Xq7-unique"
PG = ("catalog.metastore=postgres", "catalog.jdbc_url=jdbc:postgresql://db:5432/metastore",
      "catalog.jdbc_user=hive")
# Spark's default spark.redaction.regex: what its UI, event log and `--verbose` mask.
SPARK_REDACTION = re.compile(r"(?i)secret|password|token|access[.]key")


def _cfg(*extra: str, env: dict[str, str] | None = None) -> LakecastConfig:
    return load_config(None, [*PG, *extra], env=env or {})


def test_secret_from_env_file_or_inline(tmp_path: Path) -> None:
    env_cfg = _cfg("catalog.jdbc_password={env: LAKECAST_JDBC_PASSWORD}", env={"LAKECAST_JDBC_PASSWORD": PASSWORD})
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    file_cfg = _cfg(f"catalog.jdbc_password={{file: {tmp_path / 'pw'}}}")
    inline = _cfg(f"catalog.jdbc_password={PASSWORD}")
    for cfg in (env_cfg, file_cfg, inline):
        assert isinstance(cfg.catalog.jdbc_password, SecretStr)
        assert cfg.catalog.jdbc_password.get_secret_value() == PASSWORD
        assert PASSWORD not in repr(cfg) and PASSWORD not in json.dumps(cfg.model_dump(mode="json"))
        assert spark_settings(cfg)["spark.hadoop.javax.jdo.option.ConnectionPassword"] == PASSWORD


@pytest.mark.parametrize(("value", "pattern"), [
    ("{env: NO_SUCH_VAR}", r"catalog\.jdbc_password: .*environment variable NO_SUCH_VAR is not set"),
    ("{file: /no/such/file}", r"catalog\.jdbc_password: .*file /no/such/file cannot be read"),
    ("{vault: x}", r"catalog\.jdbc_password: .*a secret is a string, \{env: VARIABLE\} or \{file: PATH\}"),
])
def test_bad_secret_names_the_key_and_the_source(value: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        _cfg(f"catalog.jdbc_password={value}")


def test_errors_never_echo_a_secret() -> None:
    with pytest.raises(ConfigError) as err:  # a section-level error shows the section's input
        load_config(None, ["catalog.metastore=postgres", f"catalog.jdbc_password={PASSWORD}"], env={})
    assert "catalog.jdbc_url is not set" in str(err.value) and PASSWORD not in str(err.value)
    with pytest.raises(ConfigError) as err:
        _cfg(f"catalog.jdbc_password=[{PASSWORD}]")
    assert "catalog.jdbc_password" in str(err.value) and PASSWORD not in str(err.value)


def _secret_named_fields(model: type[BaseModel], prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.update(_secret_named_fields(ann, f"{prefix}{name}."))
        elif re.search(r"(?i)secret|password|key", name):
            out[prefix + name] = ann
    return out


def test_every_secret_named_key_is_a_secret() -> None:
    fields = _secret_named_fields(LakecastConfig)
    assert {"catalog.jdbc_password", "mlflow.tracking_password", "mlflow.s3_secret_access_key"} <= set(fields)
    assert {k: a for k, a in fields.items() if "SecretStr" not in str(a)} == {}


def test_dumps_mask_spark_conf_secrets_and_url_passwords() -> None:
    cfg = _cfg(f"catalog.jdbc_password={PASSWORD}", f"spark.conf.spark.hadoop.fs.s3a.secret.key={PASSWORD}x",
               f"mlflow.tracking_uri=https://bob:{PASSWORD}@mlflow.example.com", "spark.conf.spark.task.cpus=1")
    dumped = json.dumps(redact(cfg.model_dump(mode="json")))
    assert "pw-Xq7" not in dumped
    assert '"spark.task.cpus": "1"' in dumped and "https://bob:**********@mlflow.example.com" in dumped
    # Every Spark setting that holds a secret is one Spark itself masks.
    secret_keys = [k for k, v in spark_settings(cfg).items() if PASSWORD in v]
    assert secret_keys and all(SPARK_REDACTION.search(k) for k in secret_keys), secret_keys


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_job_runs_row_and_logs_hold_no_secret() -> None:
    cfg = _cfg(f"catalog.jdbc_password={PASSWORD}")
    rec = RunRecord(run_id="r1", job="ingest", parameters={"config": cfg.model_dump(mode="json"),
                                                           "source": f"s3://k:{PASSWORD}@bucket/x"},
                    started_at=datetime.now(UTC), error=f"SQLException: login with {PASSWORD} failed")
    row = rec.as_row()
    assert not [v for v in row if PASSWORD in str(v)], row
    assert "login with ********** failed" in str(row)
    logger = logging.getLogger("lakecast.test_secrets")
    handler = _Collect()
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    try:
        logger.warning("connecting with %s", PASSWORD)
    finally:
        logger.removeHandler(handler)
    assert handler.messages == ["connecting with **********"]
    assert redact_text(f"jdbc:postgresql://db/m?user=a&password={PASSWORD}") == \
        "jdbc:postgresql://db/m?user=a&password=**********"


def test_properties_files_are_created_owner_only(tmp_path: Path) -> None:
    out = tmp_path / "lakecast.properties"
    out.write_text("old\n")
    out.chmod(0o644)  # an older, world-readable file is replaced, not reused
    write_properties({"spark.hadoop.javax.jdo.option.ConnectionPassword": PASSWORD}, out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert PASSWORD in out.read_text() and [p.name for p in tmp_path.iterdir()] == [out.name]


# A whole demo writes job_runs, MLflow params and artifacts; spark-conf a properties file.
@pytest.mark.postgres
def test_a_full_run_on_postgres_stores_the_password_nowhere(spark: Any, zone_demos: dict[str, DemoRun]) -> None:
    """The UTC demo of tests/demo_runs.py: a PostgreSQL metastore whose password comes from the env."""
    run = zone_demos["UTC"]
    if not run.postgres:
        pytest.skip("PostgreSQL server programs not found (apt-get install postgresql)")
    home, secret = run.home, SECRET
    args = [x for o in run.sets for x in ("--set", o)]
    conf_run = run_cli(home, "spark-conf", "--out", str(home / "lakecast.properties"), *args, env=run.env)
    for code, out in ((run.returncode, run.output), (conf_run.returncode, conf_run.stdout + conf_run.stderr)):
        assert code == 0, out[-3000:]
        assert secret not in out

    db = home / "warehouse" / "lakecast.db"
    tables = sorted(p for p in db.iterdir() if (p / "_delta_log").is_dir())
    assert {"observations", "forecasts", "job_run_events", "quarantine"} <= {p.name for p in tables}
    for t in tables:  # every governed table, every row, every column
        hits = spark.sql(f"SELECT count(*) FROM delta.`{t}` WHERE to_json(struct(*)) LIKE '%{secret}%'")
        assert hits.first()[0] == 0, f"{t.name} holds the password"
    masked = spark.sql(f"SELECT count(DISTINCT run_id) FROM delta.`{db / 'job_run_events'}` "
                       "WHERE parameters LIKE '%\"jdbc_password\": \"**********\"%'").first()[0]
    assert masked >= 3  # ingest, train, predict... recorded their (masked) configuration

    holders = {p: p.stat().st_mode for p in home.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()}
    assert {p.relative_to(home): stat.S_IMODE(m) for p, m in holders.items()} == {
        Path("lakecast.properties"): 0o600}  # not mlflow.db, an artifact, a log, a table file
    configs = list((home / "mlartifacts").rglob("config.json"))
    assert configs and json.loads(configs[0].read_text())["catalog"]["jdbc_password"] == "**********"
