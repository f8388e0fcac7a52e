"""Configuration: defaults, overrides and errors that name the key (no Spark needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conf import ConfigError, load_config
from conf.freq import parse_freq


def test_defaults_load_with_public_keys() -> None:
    cfg = load_config(env={})
    assert (cfg.data.series_col, cfg.data.time_col, cfg.data.value_col) == ("series_id", "ts", "value")
    assert cfg.data.freq == "h"
    assert cfg.windows.lookback == "auto" and cfg.windows.horizon == "auto"  # hourly: 168 and 24 (test_auto_steps)
    assert cfg.model.name == "lakecast_lstm"
    assert cfg.spark.master == "local[*]"
    assert cfg.mlflow.tracking_uri is None
    assert cfg.home == Path(".lakecast").resolve()


def test_set_overrides_are_typed_and_dotted(tmp_path: Path) -> None:
    cfg = load_config(None, ["train.max_epochs=5", "spark.master=local[2]", "data.freq=15min",
                             "spark.conf.spark.executor.memory=4g"], env={})
    assert cfg.train.max_epochs == 5
    assert isinstance(cfg.train.max_epochs, int)
    assert cfg.spark.master == "local[2]"
    assert cfg.data.freq == "15min"
    assert cfg.spark.conf == {"spark.executor.memory": "4g"}


def test_conf_file_then_env_then_set(tmp_path: Path) -> None:
    f = tmp_path / "run.yaml"
    f.write_text("home: /from/file\ntrain:\n  max_epochs: 7\n  patience: 2\n")
    cfg = load_config(f, ["train.max_epochs=9"], env={"LAKECAST_HOME": str(tmp_path / "h")})
    assert cfg.train.max_epochs == 9          # --set beats the file
    assert cfg.train.patience == 2            # the file beats the defaults
    assert cfg.home == (tmp_path / "h").resolve()  # LAKECAST_HOME beats the file
    assert cfg.tracking_uri == f"sqlite:///{(tmp_path / 'h' / 'mlflow.db').resolve()}"


def test_mlflow_server_uri_switches_tracking() -> None:
    cfg = load_config(None, ["mlflow.tracking_uri=http://mlflow:5000"], env={})
    assert cfg.tracking_uri == "http://mlflow:5000"
    assert cfg.registry_uri == "http://mlflow:5000"


@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        ("data.freq=3x", r"data\.freq: .*'3x' is not a supported pandas offset alias"),
        ("train.max_epochs=0", r"train\.max_epochs: .*greater than or equal to 1"),
        ("train.max_epoch=5", r"train\.max_epoch: unknown key"),
        ("windows.lookback=abc", r"windows\.lookback: .*valid integer.*'abc'"),
        ("data.timezone=Mars/Olympus", r"data\.timezone: .*not a known IANA timezone"),
        ("catalog.metastore=postgres", r"catalog: .*catalog\.jdbc_url is not set"),
        ("scoring.precision=int4", r"scoring\.precision: .*'auto', 'fp32', 'bf16' or 'fp16'"),
        ("catalog.database=bad-name", r"catalog\.database: .*not a valid database name"),
        ("scoring.batch_size=0", r"scoring\.batch_size: .*positive number of windows or 'auto'"),
        ("scoring.batch_sizes.bf16=0", r"scoring\.batch_sizes\.bf16: .*greater than or equal to 1"),
        ("train.torch_threads=-1", r"train\.torch_threads: .*'auto' or a number of threads >= 0"),
    ],
)
def test_bad_values_name_the_key(override: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        load_config(None, [override], env={})


def test_training_threads_auto_takes_the_usable_cores_up_to_two() -> None:
    import os

    from models.train import AUTO_MAX_THREADS, training_threads

    cfg = load_config(None, [], env={})
    assert cfg.train.torch_threads == "auto"
    assert AUTO_MAX_THREADS == 2
    assert training_threads("auto") == min(len(os.sched_getaffinity(0)), AUTO_MAX_THREADS)
    assert load_config(None, ["train.torch_threads=3"], env={}).train.torch_threads == 3
    assert training_threads(3) == 3 and training_threads(0) == 0


def test_scoring_batch_size_per_precision() -> None:
    """`auto` takes each precision's own batch (fp32 and bf16 peak at different sizes); a number wins."""
    auto = load_config(None, ["scoring.batch_sizes.fp32=32"], env={}).scoring
    assert (auto.batch_size_for("fp32"), auto.batch_size_for("bf16"), auto.batch_size_for("fp16")) == (32, 256, 1024)
    fixed = load_config(None, ["scoring.batch_size=128"], env={}).scoring
    assert {fixed.batch_size_for(p) for p in ("fp32", "bf16", "fp16")} == {128}


def test_malformed_set_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--set 'train\.max_epochs' must look like section\.key=value"):
        load_config(None, ["train.max_epochs"], env={})
    with pytest.raises(ConfigError, match=r"config file .*nope\.yaml does not exist"):
        load_config(tmp_path / "nope.yaml", env={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match=r"must hold a mapping of sections"):
        load_config(bad, env={})


@pytest.mark.parametrize("name", ["local.yaml", "cluster.yaml"])
def test_shipped_examples_are_valid(name: str) -> None:
    # cluster.yaml reads the metastore password from the environment docker-compose.yml sets.
    cfg = load_config(Path(__file__).parents[1] / "conf" / name, env={"LAKECAST_JDBC_PASSWORD": "x"})
    assert cfg.spark.master


@pytest.mark.parametrize(
    ("alias", "season", "calendar"),
    [("15min", 96, False), ("h", 24, False), ("2h", 12, False), ("D", 7, False), ("W", 52, False),
     ("MS", 12, True), ("QS", 4, True)],
)
def test_frequencies(alias: str, season: int, calendar: bool) -> None:
    f = parse_freq(alias)
    assert f.season_length() == season
    assert f.is_calendar is calendar
    assert f.alias == alias
