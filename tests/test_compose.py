"""docker-compose.yml and conf/cluster.yaml describe the same deployment.

No Docker engine runs here: the file is parsed and cross-checked against the typed cluster
configuration (host names, ports, credentials, volumes, env names, config keys), and
`docker compose config` / `docker-compose config` validates it when a client is installed.
"""

from __future__ import annotations

import copy
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from conf import ConfigError, LakecastConfig, load_config
from conf.secrets import reveal
from pipelines.tooling.metastore_schema import schema_scripts
from pipelines.tooling.thrift_server import SqlServerError, check_exposure
from tests.system_packages import ensure_packages

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
CLUSTER_CONF = "conf/cluster.yaml"
APP_DIR = "/opt/lakecast/app"  # the Dockerfile's WORKDIR: where conf/cluster.yaml lies in the image
REQUIRED = ("spark-master", "spark-worker-1", "spark-worker-2", "metastore-db", "mlflow", "mlflow-db",
            "minio", "sql-server", "lakecast-demo")


def _size_bytes(s: str) -> int:
    m = re.fullmatch(r"(\d+)([kmgt]?)b?", str(s).strip().lower())
    assert m, f"not a JVM memory size: {s!r}"
    return int(m.group(1)) * 1024 ** " kmgt".index(m.group(2) or " ")


def _cmd(service: dict[str, Any]) -> list[str]:
    c = service.get("command", [])
    return shlex.split(c) if isinstance(c, str) else [str(x) for x in c]


def _opt(cmd: list[str], flag: str) -> str | None:
    return cmd[cmd.index(flag) + 1] if flag in cmd else None


def _container_ports(service: dict[str, Any]) -> set[int]:
    return {int(str(p).split(":")[-1].split("/")[0]) for p in service.get("ports", [])}


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return {k: str(v) for k, v in env.items()}


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (named volume or host path) of each volume."""
    out = {}
    for v in service.get("volumes", []):
        parts = v.split(":")
        out[parts[1]] = parts[0]
    return out


def _lakecast_services(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services.items() if _cmd(s)[:1] == ["lakecast"]}


def _check_spark(services: dict[str, Any], cfg: LakecastConfig) -> list[str]:
    problems = []
    master = urlparse(cfg.spark.master)
    m = services.get(master.hostname or "")
    if m is None:
        return [f"spark.master {cfg.spark.master}: no service {master.hostname!r}"]
    cmd = _cmd(m)
    if "org.apache.spark.deploy.master.Master" not in cmd or _opt(cmd, "--port") != str(master.port):
        problems.append(f"{master.hostname}: must run the Master on port {master.port} ({cmd})")
    if master.port not in _container_ports(m):
        problems.append(f"{master.hostname}: port {master.port} not published")
    workers = {n: s for n, s in services.items() if "org.apache.spark.deploy.worker.Worker" in _cmd(s)}
    if len(workers) < 2:
        problems.append(f"expected at least two Spark workers, found {sorted(workers)}")
    exec_mem = _size_bytes(cfg.spark.conf.get("spark.executor.memory", "1g"))
    exec_cores = int(cfg.spark.conf.get("spark.executor.cores", "1"))
    for name, w in workers.items():
        cmd = _cmd(w)
        if cmd[-1] != cfg.spark.master:
            problems.append(f"{name}: registers with {cmd[-1]}, config says {cfg.spark.master}")
        if _size_bytes(_opt(cmd, "--memory") or "0") < exec_mem:
            problems.append(f"{name}: --memory below spark.executor.memory {exec_mem}")
        if int(_opt(cmd, "--cores") or 0) < exec_cores:
            problems.append(f"{name}: --cores below spark.executor.cores {exec_cores}")
        if _mounts(w).get(str(cfg.home)) is None:
            problems.append(f"{name}: executors write Delta files, so it must mount the home {cfg.home}")
    return problems


def _check_metastore(services: dict[str, Any], cfg: LakecastConfig) -> list[str]:
    url = urlparse(str(cfg.catalog.jdbc_url).removeprefix("jdbc:"))
    db = services.get(url.hostname or "")
    if db is None:
        return [f"catalog.jdbc_url {cfg.catalog.jdbc_url}: no service {url.hostname!r}"]
    env, problems = _env(db), []
    want = {"POSTGRES_DB": url.path.lstrip("/"), "POSTGRES_USER": cfg.catalog.jdbc_user,
            "POSTGRES_PASSWORD": reveal(cfg.catalog.jdbc_password)}
    for key, value in want.items():
        if env.get(key) != value:
            shown = "the jobs' LAKECAST_JDBC_PASSWORD" if key == "POSTGRES_PASSWORD" else repr(value)
            problems.append(f"{url.hostname}: {key}={env.get(key)!r}, conf/cluster.yaml needs {shown}")
    if url.port != 5432 or not str(db.get("image", "")).startswith("postgres"):
        problems.append(f"{url.hostname}: must be a postgres image listening on {url.port}")
    init = _mounts(db).get("/docker-entrypoint-initdb.d", "")
    scripts = sorted(p.name for p in (REPO / init).glob("*.sql")) if init else []
    if scripts != [p.name for p in schema_scripts()]:
        problems.append(f"{url.hostname}: /docker-entrypoint-initdb.d must mount the Hive schema scripts")
    return problems


def _check_mlflow(services: dict[str, Any], cfg: LakecastConfig) -> list[str]:
    uri = urlparse(str(cfg.mlflow.tracking_uri))
    srv = services.get(uri.hostname or "")
    if srv is None:
        return [f"mlflow.tracking_uri {cfg.mlflow.tracking_uri}: no service {uri.hostname!r}"]
    cmd, env, problems = _cmd(srv), _env(srv), []
    if _opt(cmd, "--port") != str(uri.port) or uri.port not in _container_ports(srv):
        problems.append(f"{uri.hostname}: mlflow server must listen on and publish {uri.port}")
    if uri.hostname not in (_opt(cmd, "--allowed-hosts") or "").split(","):
        problems.append(f"{uri.hostname}: --allowed-hosts must admit the host name the jobs use")
    store = urlparse(_opt(cmd, "--backend-store-uri") or "")
    store_db = services.get(store.hostname or "")
    if store.scheme != "postgresql" or store_db is None:
        problems.append(f"{uri.hostname}: the backend store must be a PostgreSQL service ({store.geturl()})")
    else:
        e = _env(store_db)
        if (e.get("POSTGRES_USER"), e.get("POSTGRES_PASSWORD"), e.get("POSTGRES_DB")) != (
                store.username, store.password, store.path.lstrip("/")):
            problems.append(f"{store.hostname}: credentials differ from mlflow's --backend-store-uri")
    dest = urlparse(_opt(cmd, "--artifacts-destination") or "")
    s3 = urlparse(env.get("MLFLOW_S3_ENDPOINT_URL", ""))
    minio = services.get(s3.hostname or "")
    if dest.scheme != "s3" or minio is None:
        problems.append(f"{uri.hostname}: artifacts must go to S3 (MinIO) through MLFLOW_S3_ENDPOINT_URL")
    else:
        m_env = _env(minio)
        if (env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")) != (
                m_env.get("MINIO_ROOT_USER"), m_env.get("MINIO_ROOT_PASSWORD")):
            problems.append(f"{uri.hostname}: AWS keys differ from {s3.hostname}'s root credentials")
        makers = " ".join(str(s.get("entrypoint", "")) for s in services.values())
        if f"local/{dest.hostname}" not in makers:
            problems.append(f"no service creates the artifact bucket {dest.hostname!r}")
    return problems


def _check_lakecast(compose: dict[str, Any], cfg: LakecastConfig) -> list[str]:
    services, problems = compose["services"], []
    jobs = _lakecast_services(services)
    if "demo" not in {_cmd(s)[1] for s in jobs.values()}:
        problems.append("no one-shot service runs `lakecast demo`")
    for name, s in jobs.items():
        cmd = _cmd(s)
        if _opt(cmd, "--conf") != CLUSTER_CONF:
            problems.append(f"{name}: must run with --conf {CLUSTER_CONF}")
        if _env(s).get("LAKECAST_HOME") != str(cfg.home):
            problems.append(f"{name}: LAKECAST_HOME must be {cfg.home}")
        if _mounts(s).get(str(cfg.home)) is None:
            problems.append(f"{name}: must mount a volume at the home {cfg.home}")
        for dep, cond in (s.get("depends_on") or {}).items():
            if dep not in services:
                problems.append(f"{name}: depends on unknown service {dep}")
            elif cond.get("condition") == "service_healthy" and "healthcheck" not in services[dep]:
                problems.append(f"{name}: waits for {dep} to be healthy, but it has no healthcheck")
        if _cmd(s)[1] == "sql-server" and cfg.sql_server.port not in _container_ports(s):
            problems.append(f"{name}: must publish sql_server.port {cfg.sql_server.port}")
        try:
            service_config(s)  # conf/cluster.yaml's secrets resolve in the service's environment
        except ConfigError as e:
            problems.append(f"{name}: {e}".replace("\n", " "))
    homes = {_mounts(s).get(str(cfg.home)) for s in services.values() if str(cfg.home) in _mounts(s)}
    if len(homes) != 1 or not homes <= set(compose.get("volumes", {})):
        problems.append(f"every service must share ONE declared volume at {cfg.home}, found {homes}")
    return problems


def service_config(service: dict[str, Any]) -> LakecastConfig:
    """The configuration a lakecast service runs with: its --conf, its --set and its environment."""
    cmd = _cmd(service)
    sets = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"]
    return load_config(REPO / (_opt(cmd, "--conf") or CLUSTER_CONF), sets, env=_env(service))


def _check_sql_server(services: dict[str, Any]) -> list[str]:
    """A published SQL server authenticates its users (or opts out in so many words)."""
    name, srv = next((n, s) for n, s in services.items() if _cmd(s)[:2] == ["lakecast", "sql-server"])
    try:
        cfg = service_config(srv)
        check_exposure(cfg)
    except (ConfigError, SqlServerError) as e:
        return [f"{name}: {e}".replace("\n", " ")]
    if cfg.sql_server.authentication != "ldap":
        return []
    ldap = urlparse(str(cfg.sql_server.ldap_url))
    if ldap.hostname not in services:
        return [f"sql_server.ldap_url {cfg.sql_server.ldap_url}: no service {ldap.hostname!r}"]
    problems = []
    if _env(services[ldap.hostname]).get("LDAP_PORT_NUMBER", "389") != str(ldap.port or 389):
        problems.append(f"{ldap.hostname}: must listen on the port of sql_server.ldap_url ({ldap.port})")
    if (srv.get("depends_on") or {}).get(ldap.hostname, {}).get("condition") != "service_healthy":
        problems.append(f"{name}: must wait for {ldap.hostname} to be healthy")
    return problems


def compose_problems(compose: dict[str, Any], cfg: LakecastConfig) -> list[str]:
    """Everything in `compose` that disagrees with `cfg` (conf/cluster.yaml); empty when consistent."""
    services = compose.get("services", {})
    missing = [s for s in REQUIRED if s not in services]
    if missing:
        return [f"missing services: {missing}"]
    return [*_check_spark(services, cfg), *_check_metastore(services, cfg), *_check_mlflow(services, cfg),
            *_check_lakecast(compose, cfg), *_check_sql_server(services)]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def cluster_cfg() -> LakecastConfig:
    # Also: cluster.yaml is a valid config in the environment the compose file gives the jobs.
    return service_config(yaml.safe_load(COMPOSE.read_text())["services"]["lakecast-demo"])


def test_compose_matches_cluster_config(compose: dict[str, Any], cluster_cfg: LakecastConfig) -> None:
    assert compose_problems(compose, cluster_cfg) == []


@pytest.mark.parametrize(("edit", "problem"), [
    (lambda c: c["services"]["metastore-db"]["environment"].update(POSTGRES_USER="postgres"),
     "POSTGRES_USER='postgres', conf/cluster.yaml needs 'hive'"),
    (lambda c: c["services"]["spark-worker-2"].update(command="spark-class org.apache.spark.deploy.worker."
                                                      "Worker --cores 2 --memory 1g spark://spark-master:7077"),
     "spark-worker-2: --memory below spark.executor.memory"),
    (lambda c: c["services"].pop("mlflow"), "missing services: \\['mlflow'\\]"),
    (lambda c: c["services"]["lakecast-demo"].update(command="lakecast demo"),
     "lakecast-demo: must run with --conf conf/cluster.yaml"),
    (lambda c: c["services"]["minio"]["environment"].update(MINIO_ROOT_PASSWORD="x"),
     "AWS keys differ from minio's root credentials"),
    (lambda c: c["services"]["metastore-db"]["environment"].update(POSTGRES_PASSWORD="other"),
     "POSTGRES_PASSWORD='other', conf/cluster.yaml needs the jobs' LAKECAST_JDBC_PASSWORD"),
    (lambda c: c["services"]["lakecast-demo"].update(environment={"LAKECAST_HOME": "/opt/lakecast/home"}),
     "lakecast-demo: invalid configuration: .*environment variable LAKECAST_JDBC_PASSWORD is not set"),
    (lambda c: c["services"]["sql-server"].update(command=c["services"]["sql-server"]["command"]
                                                  + " --set sql_server.authentication=none"),
     "sql-server: refusing to listen on sql_server.host 0.0.0.0 .* without authentication"),
    (lambda c: c["services"].pop("ldap"), "sql_server.ldap_url ldap://ldap:1389: no service 'ldap'"),
    (lambda c: c["services"]["sql-server"]["depends_on"].pop("ldap"), "sql-server: must wait for ldap"),
])
def test_inconsistencies_are_reported(compose: dict[str, Any], cluster_cfg: LakecastConfig, edit: Any,
                                      problem: str) -> None:
    broken = copy.deepcopy(compose)
    edit(broken)
    assert any(re.search(problem, p) for p in compose_problems(broken, cluster_cfg)), \
        compose_problems(broken, cluster_cfg)


def test_images_are_built_from_the_dockerfile(compose: dict[str, Any], cluster_cfg: LakecastConfig) -> None:
    text = DOCKERFILE.read_text()
    stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, flags=re.M | re.I))
    targets = {s["build"]["target"] for s in compose["services"].values() if "build" in s}
    assert targets and targets <= stages
    assert f"WORKDIR {APP_DIR}" in text and "COPY conf conf" in text  # --conf conf/cluster.yaml resolves
    assert str(cluster_cfg.spark.ivy_dir) in text  # JARs fetched at build time into the configured cache
    assert f"LAKECAST_HOME={cluster_cfg.home}" in text


def test_docker_compose_validates_the_file(tmp_path: Path) -> None:
    """The compose client itself accepts the file (and rejects a broken one, so the check bites).
    No engine is needed for `config`; Debian's docker-compose is installed on first use as root."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"],
                                                 capture_output=True).returncode == 0:
        client = ["docker", "compose"]
    else:
        found = ensure_packages(("docker-compose",), ("docker-compose",))
        if isinstance(found, str):
            pytest.skip(f"{found} (the file is still checked above)")
        client = [found[0]]
    res = subprocess.run([*client, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True,
                         timeout=120, cwd=REPO)
    assert res.returncode == 0, res.stderr
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("services:", "services:\n  bogus:\n    no_such_option: 1", 1))
    res = subprocess.run([*client, "-f", str(broken), "config", "-q"], capture_output=True, text=True,
                         timeout=120, cwd=REPO)
    assert res.returncode != 0 and "no_such_option" in res.stdout + res.stderr
