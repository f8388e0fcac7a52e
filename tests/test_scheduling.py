"""Scheduling entry points: every job runs as `lakecast <job>` and as `spark-submit jobs/<job>.py`;
the Airflow DAG and the crontab call existing jobs with options those jobs accept.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import itertools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest

from conf import LakecastConfig
from jobs.cli import COMMANDS
from pipelines.session.jars import delta_package, jdbc_driver_jar
from pipelines.session.submit import properties_text, write_properties
from tests.conftest import IVY_DIR, REPO, make_config

DAG_FILE = REPO / "deploy" / "airflow" / "lakecast_dag.py"
CRONTAB = REPO / "deploy" / "cron" / "lakecast.crontab"
BIN = Path(sys.executable).parent


def _command(name: str) -> click.Command:
    cmd = importlib.import_module(COMMANDS[name]).cli
    assert isinstance(cmd, click.Command)
    return cmd


def _accepts(cmd: click.Command, flag: str) -> bool:
    return any(flag in p.opts for p in cmd.params if isinstance(p, click.Option))


@pytest.mark.parametrize("module", sorted(set(COMMANDS.values())))
def test_every_job_module_is_a_spark_submit_script(module: str) -> None:
    """spark-submit runs the file as __main__ with jobs/ first on sys.path."""
    path = REPO / Path(*module.split(".")).with_suffix(".py")
    tail = [ln.strip() for ln in path.read_text().rstrip().splitlines()[-2:]]
    assert tail == ['if __name__ == "__main__":', "cli()"], f"{path} must end with the cli() entry point"


@pytest.mark.parametrize("path", sorted((REPO / "jobs").glob("*.py")), ids=lambda p: p.name)
def test_job_scripts_drop_their_folder_from_sys_path_first(path: Path) -> None:
    """As a script, jobs/<name>.py would otherwise shadow an installed or stdlib module <name>."""
    if "__main__" not in path.read_text():
        return  # not an entry script
    body = ast.parse(path.read_text()).body
    imports = [n for n in body if isinstance(n, ast.Import | ast.ImportFrom)
               and not (isinstance(n, ast.ImportFrom) and n.module == "__future__")]
    first = imports[0]
    assert isinstance(first, ast.Import) and first.names[0].name == "jobs._script", (
        f"{path}: the first import must be `import jobs._script`, before anything it could shadow")


def test_job_script_does_not_shadow_installed_packages(tmp_path: Path) -> None:
    """`python jobs/datasets.py` (how spark-submit runs it) leaves `datasets` and `sql` to installed packages.

    Fake installed packages named like jobs/datasets.py and jobs/sql.py sit on PYTHONPATH; after the
    script ran, importing them (as a library in the same process would) must find the packages.
    """
    site = tmp_path / "site"
    for name in ("datasets", "sql"):
        (site / name).mkdir(parents=True)
        (site / name / "__init__.py").write_text("INSTALLED = True\n")
    (site / "sitecustomize.py").write_text(
        "import atexit, importlib, sys\n"
        "def report():\n"
        "    for name in ('datasets', 'sql'):\n"
        "        m = importlib.import_module(name)\n"
        "        print(f'{name} -> {getattr(m, \"INSTALLED\", False)} {m.__file__}')\n"
        "atexit.register(report)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    res = subprocess.run([sys.executable, str(REPO / "jobs" / "datasets.py"), "--help"], capture_output=True,
                         text=True, timeout=120, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "Usage:" in res.stdout
    for name in ("datasets", "sql"):
        assert f"{name} -> True {site / name / '__init__.py'}" in res.stdout, res.stdout + res.stderr


def test_scheduled_jobs_take_as_of() -> None:
    for job in ("ingest", "predict", "train", "promote"):
        assert _accepts(_command(job), "--as-of"), f"lakecast {job} needs --as-of (the logical date)"


def test_submit_properties_carry_delta_interpreter_and_jdbc_driver(cfg: LakecastConfig) -> None:
    from jobs.spark_conf import run

    derby = run(cfg)
    assert delta_package() in derby["spark.jars.packages"].split(",")
    assert derby["spark.pyspark.python"] == derby["spark.pyspark.driver.python"] == sys.executable
    assert derby["spark.sql.catalog.spark_catalog"].endswith("DeltaCatalog")
    pg = run(make_config(cfg.home, "catalog.metastore=postgres",
                         "catalog.jdbc_url=jdbc:postgresql://db:5432/metastore"))
    jar = jdbc_driver_jar(make_config(cfg.home))
    assert pg["spark.driver.extraClassPath"] == str(jar) and jar.is_file()  # fetched once, cached
    assert pg["spark.hadoop.datanucleus.schema.autoCreateAll"] == "false"


def test_properties_file_reads_back_through_java(spark: Any, tmp_path: Path) -> None:
    """Escaping survives java.util.Properties, which is how spark-submit reads the file."""
    settings = {"spark.a": "C:\\dir\\x", "spark.b": "k=v:w", "spark.c": "-Dx=1 -Dy=2", "spark.d": ""}
    path = write_properties(settings, tmp_path / "p.properties")
    jvm = spark.sparkContext._jvm
    props = jvm.java.util.Properties()
    props.load(jvm.java.io.StringReader(path.read_text()))
    assert {k: props.getProperty(k) for k in settings} == settings
    assert properties_text(settings) == path.read_text()


def test_spark_submit_without_lakecast_settings_fails_clearly(tmp_path: Path) -> None:
    """Plain spark-submit lacks the Delta JARs: one actionable line and a non-zero exit."""
    env = {**os.environ, "LAKECAST_HOME": str(tmp_path), "PATH": f"{BIN}:{os.environ['PATH']}",
           "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    res = subprocess.run([str(BIN / "spark-submit"), str(REPO / "jobs" / "sql.py"), "SELECT 1",
                          "--set", "spark.master=local[1]", "--set", f"spark.ivy_dir={IVY_DIR}"],
                         capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    out = res.stdout + res.stderr  # spark-submit's PythonRunner merges the script's stderr into stdout
    assert res.returncode != 0
    assert re.search(r"Error: Delta Lake is not on this spark-submit driver's class path.*"
                     r"lakecast spark-conf --out lakecast.properties", out), out[-3000:]


def _dag_calls() -> list[tuple[str, list[str]]]:
    """(job, literal args) of every job_task(...) call in the DAG file, read without Airflow."""
    calls = []
    for node in ast.walk(ast.parse(DAG_FILE.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "job_task":
            args = [a.value if isinstance(a, ast.Constant) else "<expr>" for a in node.args]
            calls.append((str(args[0]), [str(a) for a in args[1:]]))
    return calls


def test_dag_tasks_call_existing_jobs_with_their_options() -> None:
    calls = _dag_calls()
    assert {job for job, _ in calls} == {"ingest", "predict", "evaluate", "train", "promote"}
    for job, args in calls:
        assert (REPO / "jobs" / f"{job}.py").is_file() and job in COMMANDS
        cmd = _command(job)
        for flag in (a for a in args if a.startswith("--")):
            assert _accepts(cmd, flag), f"the DAG passes {flag} to {job}, which does not accept it"


def test_airflow_builds_the_task_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("airflow", reason="Airflow is optional (pip install apache-airflow)")
    monkeypatch.setenv("LAKECAST_REPO", str(REPO))
    spec = importlib.util.spec_from_file_location("lakecast_dag", DAG_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    daily, weekly = module.daily, module.weekly
    assert daily.dag_id == "lakecast_daily" and weekly.dag_id == "lakecast_weekly_train"
    chains = {daily: ["spark_conf", "ingest", "predict", "evaluate", "retrain_on_alert"],
              weekly: ["spark_conf", "train", "promote"]}
    for dag, chain in chains.items():
        assert sorted(dag.task_ids) == sorted(chain)
        for up, down in itertools.pairwise(chain):
            assert dag.get_task(down).upstream_task_ids == {up}


def _cron_entries() -> list[tuple[list[str], str]]:
    entries = []
    for line in CRONTAB.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        fields = line.split(None, 5)
        entries.append((fields[:5], fields[5]))
    return entries


def test_crontab_schedules_existing_jobs_with_their_options() -> None:
    entries = _cron_entries()
    assert len(entries) >= 2
    seen = set()
    for schedule, command in entries:
        for field, (lo, hi) in zip(schedule, [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)], strict=True):
            assert field == "*" or lo <= int(field) <= hi, f"bad cron field {field!r} in {schedule}"
        assert re.search(r"(?<!\\)%", command) is None, "cron needs % escaped as \\%"
        for part in re.split(r"&&|\|\||;", command):  # each command of the line's list
            words = [w for w in shlex.split(part.split(">>")[0]) if w not in ("{", "}")]
            if words[:1] != ["lakecast"]:
                continue
            job = words[1]
            seen.add(job)
            cmd = _command(job)
            for flag in (w for w in words[2:] if w.startswith("--")):
                assert _accepts(cmd, flag), f"crontab passes {flag} to lakecast {job}"
    assert {"ingest", "predict", "evaluate", "train", "promote"} <= seen
