"""The driver JVM's class archive: keyed by the JVM and its class path (not the home), built once
in the background, mapped by the commands that follow, and harmless when damaged."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

from conf import LakecastConfig
from pipelines.session.class_archive import WARNINGS_TO_STDERR, archive_path, java_options
from pipelines.session.settings import spark_settings
from tests.conftest import BIN, REPO, TEST_OVERRIDES, make_config

FROM_ARCHIVE = "source: shared objects file (top)"  # -Xlog:class+load: a class mapped from the dynamic archive


def test_the_archive_is_keyed_by_the_jvm_and_class_path_not_the_home(tmp_path: Path) -> None:
    folder = tmp_path / "archives"
    cfg = make_config(tmp_path / "a", f"spark.class_archive_dir={folder}")
    settings = spark_settings(cfg)
    path = archive_path(cfg, settings)
    assert path is not None and path.parent == folder.resolve() and path.suffix == ".jsa"
    other_home = make_config(tmp_path / "b", f"spark.class_archive_dir={folder}")
    assert archive_path(other_home, spark_settings(other_home)) == path
    with_jdbc = archive_path(cfg, {**settings, "spark.driver.extraClassPath": "/opt/jars/postgresql.jar"})
    assert with_jdbc is not None and with_jdbc != path and with_jdbc.parent == path.parent
    default = make_config(tmp_path / "a")
    default_path = archive_path(default, spark_settings(default))
    assert default_path is not None and default_path.parent == default.ivy_dir / "class-archive"
    off = make_config(tmp_path / "a", f"spark.class_archive_dir={folder}", "spark.class_archive=false")
    assert java_options(off, spark_settings(off)) == ""
    assert not folder.exists()  # turned off: no build was started
    folder.mkdir()
    path.with_suffix(".failed").touch()  # a build failed today (its log says why): not retried
    assert java_options(cfg, settings) == "" and not path.with_suffix(".building").exists()


def _sql_select_1(home: Path, log_prefix: Path, *sets: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """`lakecast sql "SELECT 1"` in a fresh process, and which classes its JVMs loaded from where."""
    args = [x for s in (*TEST_OVERRIDES, *sets) for x in ("--set", s)]
    env = {**os.environ, "LAKECAST_HOME": str(home),
           "JDK_JAVA_OPTIONS": f"-Xlog:class+load=info:file={log_prefix}.%p.log"}
    res = subprocess.run([str(BIN / "lakecast"), "sql", "SELECT 41 + 1 AS answer", *args],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    loaded = "".join(p.read_text(errors="replace") for p in log_prefix.parent.glob(f"{log_prefix.name}.*.log"))
    return res, loaded


def test_a_fresh_command_maps_the_archive_and_runs_without_a_damaged_one(
        spark: Any, cfg: LakecastConfig, tmp_path: Path) -> None:
    settings = spark_settings(cfg)
    path = archive_path(cfg, settings)
    assert path is not None
    # The session fixture's start began building it (once per JVM and class path); start it if not.
    java_options(cfg, settings)
    deadline = time.time() + 600
    while time.time() < deadline and (path.with_suffix(".building").exists() or not path.is_file()):
        time.sleep(2)
    assert path.is_file(), f"no class archive after 10 minutes; see {path.with_suffix('.log')}"
    assert java_options(cfg, settings) == f"-XX:SharedArchiveFile={path} {WARNINGS_TO_STDERR}"

    res, loaded = _sql_select_1(tmp_path / "home", tmp_path / "good")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "42" in res.stdout
    assert f"org.apache.spark.sql.SparkSession {FROM_ARCHIVE}" in loaded
    assert f"org.apache.hadoop.hive.metastore.HiveMetaStoreClient {FROM_ARCHIVE}" in loaded

    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / path.name).write_bytes(os.urandom(1 << 16))
    res, loaded = _sql_select_1(tmp_path / "home", tmp_path / "bad", f"spark.class_archive_dir={damaged}")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "42" in res.stdout

    # An archive written for another class path (a moved virtual environment, a copied cache): the
    # JVM refuses it with a warning, on its stderr (the home's JVM log), so that stdout stays the
    # query's (json, csv).
    stale, jar = tmp_path / "stale", tmp_path / "extra.jar"
    zipfile.ZipFile(jar, "w").close()  # an empty JAR ahead of Spark's: another class path
    sets = (f"spark.class_archive_dir={stale}", f"spark.conf.spark.driver.extraClassPath={jar}")
    stale_cfg = make_config(tmp_path / "home", *sets)
    stale_path = archive_path(stale_cfg, spark_settings(stale_cfg))
    assert stale_path is not None and stale_path.name != path.name
    stale.mkdir()
    shutil.copyfile(path, stale_path)
    res, _ = _sql_select_1(tmp_path / "home", tmp_path / "stale", *sets)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "42" in res.stdout and "[cds" not in res.stdout
    assert "Unable to use shared archive" in (tmp_path / "home" / "logs" / "spark-jvm.log").read_text()
    assert "org.apache.spark.sql.SparkSession source:" in loaded and FROM_ARCHIVE not in loaded
