"""What every lakecast command shares: `--conf`, `--set`, logging, the session, errors."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from conf import ConfigError, LakecastConfig, load_config
from conf.errors import LakecastError
from conf.secrets import RedactingFilter, loggable_argv, redact_text
from jobs._cli.driver_client import DriverMismatch, forward

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
from models.lakecast_forecaster.errors import ForecasterError

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("lakecast")
_warm: SparkSession | None = None  # in a warm driver (`lakecast driver`): its session, shared by every run


def use_warm_session(spark: SparkSession) -> None:
    """Every JobContext in this process uses `spark` (the driver's) and leaves it running."""
    global _warm
    _warm = spark


class JobContext:
    """The run's configuration and, on first use, its SparkSession (built once, here)."""

    def __init__(self, cfg: LakecastConfig) -> None:
        self.cfg = cfg
        self._spark: SparkSession | None = None
        self._owns_spark = False

    @property
    def spark(self) -> SparkSession:
        if self._spark is None and _warm is not None:
            self._spark, self._owns_spark = _warm, False
        if self._spark is None:
            from pyspark.sql import SparkSession

            from pipelines.session.builder import build_session

            self._owns_spark = SparkSession.getActiveSession() is None
            log.info("starting Spark (%s) with home %s", self.cfg.spark.master, self.cfg.home)
            self._spark = build_session(self.cfg)
        return self._spark

    def close(self) -> None:
        if self._spark is not None and self._owns_spark:
            from pipelines.session.builder import stop_session

            stop_session(self._spark)
        self._spark = None


def setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose == 1 else logging.WARNING
    root = logging.getLogger()
    if not any(getattr(h, "_lakecast", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        handler._lakecast = True  # type: ignore[attr-defined]
        handler.addFilter(RedactingFilter())  # no configured secret reaches a log line
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for name in ("lakecast", "pipelines", "models", "jobs"):
        logging.getLogger(name).setLevel(min(level, logging.INFO))
    if verbose == 0:
        # Stage lines (one per step, with counts) are the progress a user sees.
        for name in ("lakecast", "pipelines", "models", "jobs"):
            logging.getLogger(name).setLevel(logging.INFO)
    for noisy in ("py4j", "mlflow", "alembic", "urllib3", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbose < 2 else logging.INFO)


def _check_as_of(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        from conf.utc import to_utc_micros

        try:
            to_utc_micros(value)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None
    return value


def as_of_option(help: str) -> Callable[[F], F]:
    """`--as-of T`, the scheduler's logical date (ISO, UTC): checked before Spark starts."""
    return click.option("--as-of", "as_of", default=None, metavar="T", callback=_check_as_of, help=help)


def unexpected_error(cfg: LakecastConfig, e: BaseException) -> str:
    """A one-line message for an error lakecast did not anticipate; the traceback goes to a file.

    A scheduler's log then shows what failed (e.g. Spark's reason for a lost stage) without a
    hundred lines of Java and Python frames; `-v` shows the traceback in place.
    """
    import traceback
    from datetime import UTC, datetime

    from pipelines.session.spark_errors import format_spark_error

    # Spark/Py4J errors: `<ERROR_CLASS>: <message>` (a constraint violation names the constraint).
    first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")[:500]
    headline = format_spark_error(e) or f"{type(e).__name__}: {first or 'no message'}"
    path = cfg.home / "logs" / "lakecast-errors.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:
            fh.write(redact_text(f"--- {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {' '.join(loggable_argv(sys.argv))}\n"))
            fh.write(redact_text("".join(traceback.format_exception(e))))
        where = f"traceback in {path}"
    except OSError:
        where = "run again with -v for the traceback"
    return redact_text(f"{headline} ({where})")


def _run_in_driver(cfg: LakecastConfig, params: dict[str, Any]) -> None:
    """Hand the command to the home's warm driver when one serves it, and exit with its code."""
    ctx = click.get_current_context()
    try:
        code = forward(cfg, ctx.command.name or "", params)
    except DriverMismatch as e:
        if cfg.catalog.metastore == "derby":  # its session holds the embedded catalog: no second one
            raise click.ClickException(redact_text(f"{e}. Run the command with the driver's settings, or stop "
                                                   "the driver first (`lakecast driver stop`).")) from None
        log.warning("%s; running in this process", redact_text(str(e)))
        return
    except OSError as e:
        raise click.ClickException(str(e)) from None
    if code is not None:
        ctx.exit(code)


def common_options(f: F) -> F:
    """Add `--conf FILE`, `--set key=value` and `-v` to a command; pass it a JobContext."""

    @click.option("--conf", "conf_file", type=click.Path(dir_okay=False), default=None,
                  help="YAML file merged over conf/default.yaml.")
    @click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                  help="Override one config key, e.g. --set train.max_epochs=5 (repeatable).")
    @click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
    @functools.wraps(f)
    def wrapper(conf_file: str | None, overrides: tuple[str, ...], verbose: int, **kwargs: Any) -> Any:
        setup_logging(verbose)
        try:
            cfg = load_config(conf_file, overrides)
        except ConfigError as e:
            raise click.UsageError(str(e)) from None
        _run_in_driver(cfg, {"conf_file": conf_file, "overrides": list(overrides), "verbose": verbose, **kwargs})
        job = JobContext(cfg)
        try:
            return f(job, **kwargs)
        except (LakecastError, ForecasterError) as e:  # the model's own errors: it ships without conf
            raise click.ClickException(redact_text(str(e))) from None
        except (click.ClickException, click.Abort, KeyboardInterrupt):
            raise
        except Exception as e:  # Spark/Py4J/torch failures: one line here, the traceback in a file
            if verbose:
                raise
            raise click.ClickException(unexpected_error(cfg, e)) from None
        finally:
            job.close()

    return wrapper  # type: ignore[return-value]
