"""`lakecast sql-server`: Spark's Thrift JDBC/ODBC server over the lakecast catalog.

The server's process, settings and lifetime are pipelines.tooling.thrift_server.
"""

from __future__ import annotations

import jobs._script  # noqa: F401  - first: as a script, jobs/ must not shadow installed packages

# isort: split
import click

from jobs._cli.context import JobContext, common_options
from pipelines.session.jars import delta_jars
from pipelines.tooling.thrift_server import SqlServerError, check_exposure, run


@click.command("sql-server")
@common_options
def cli(job: JobContext) -> None:
    """Serve the catalog over JDBC/ODBC (Spark's Thrift server) until stopped.

    Port and bind address: sql_server.port, sql_server.host; a host other than loopback needs
    sql_server.authentication=ldap (or sql_server.allow_unauthenticated_remote=true). Connect
    with `beeline -u jdbc:hive2://HOST:PORT/lakecast [-n USER -p PASSWORD]`.
    """
    cfg = job.cfg
    check_exposure(cfg)  # before Spark or the JAR download: a refusal costs nothing
    if not all(p.is_file() for p in delta_jars(cfg)):
        # First use on this machine: a session resolves the Delta JARs into the Ivy cache.
        _ = job.spark
        job.close()
    code = run(cfg)
    if code not in (0, 143):
        raise SqlServerError(f"the Thrift SQL server exited with code {code}; see {cfg.home / 'logs'}")


if __name__ == "__main__":
    cli()
