"""Spark's errors for people: one line `<ERROR_CLASS>: <message>`; Spark's own error logs to a file.

A failed statement reaches Python either as pyspark's converted exception (AnalysisException,
ParseException ... with `getCondition()`) or, for JVM exceptions pyspark does not convert
(Delta's constraint violations among them), as a raw Py4JJavaError whose `str()` is
"An error occurred while calling o72.sql". Both carry the Java throwable; its error class,
message parameters and message say what happened. pyspark also logs every captured error as a
JSON line with the whole Java stack trace (its `SQLQueryContextLogger`, straight to stderr):
`route_spark_error_logs` sends those lines to `$LAKECAST_HOME/logs/spark-errors.log`.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Any

# pyspark's loggers that print a captured exception with its Java stack trace (pyspark 4).
_PYSPARK_ERROR_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")
_MAX_CAUSES = 12


def route_spark_error_logs(log_dir: Path) -> Path:
    """Send pyspark's JSON error log lines to `log_dir/spark-errors.log` instead of stderr.

    (The JVM's own log4j output already goes to `spark-jvm.log`: the session builder starts
    the JVM with its stderr on that file.) Idempotent; returns the log file.
    """
    from pyspark.logger import PySparkLogger

    path = log_dir / "spark-errors.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    for name in _PYSPARK_ERROR_LOGGERS:
        logger = PySparkLogger.getLogger(name)
        for h in list(logger.handlers):
            if isinstance(h, logging.StreamHandler) and getattr(h, "baseFilename", None) != str(path):
                logger.removeHandler(h)  # the console handler pyspark adds, or a file of another home
                h.close()
        if not logger.handlers:
            logger.addHandler(logging.FileHandler(path, delay=True))  # addHandler sets pyspark's JSON format
        logger.propagate = False
    return path


def format_spark_error(e: BaseException) -> str | None:
    """`<ERROR_CLASS>: <message>` on one line for a Spark or Py4J exception; None for any other.

    A constraint violation anywhere in the cause chain wins (a MERGE's task failure wraps it),
    and its offending values are appended: `... violated by row with values: p10 : 5.0, ...`.
    A Java exception without an error class is shown by its class name.
    """
    if "py4j" not in sys.modules:  # Spark never started: not a Spark error
        return None
    java = _java_throwable(e)
    if java is not None:
        with contextlib.suppress(Exception):  # the JVM may be gone: fall back to Python's view
            return _format_java(java)
    from py4j.protocol import Py4JError

    condition = _python_condition(e)
    if condition is None and java is None and not isinstance(e, Py4JError):
        return None
    return f"{condition or type(e).__name__}: {_one_line(str(e), condition) or 'no message'}"


def _java_throwable(e: BaseException) -> Any | None:
    """The Java exception behind a Py4JJavaError or one of pyspark's converted exceptions."""
    java = getattr(e, "java_exception", None)  # py4j.protocol.Py4JJavaError
    if java is None:
        java = getattr(e, "_origin", None)  # pyspark.errors.exceptions.captured.CapturedException
    return java


def _python_condition(e: BaseException) -> str | None:
    from pyspark.errors import PySparkException

    if isinstance(e, PySparkException):
        with contextlib.suppress(Exception):
            return e.getCondition()
    return None


def _format_java(java: Any) -> str:
    chain = [java]
    while len(chain) < _MAX_CAUSES and (cause := chain[-1].getCause()) is not None:
        chain.append(cause)
    classified = [(t, c) for t in chain if (c := _java_condition(t))]
    constraint = next(((t, c) for t, c in classified if "CONSTRAINT" in c), None)
    throwable, condition = constraint or (classified[0] if classified else (chain[0], None))
    message = str(throwable.getMessage() or "")
    text = _one_line(message, condition)
    if condition is None:
        return f"{throwable.getClass().getSimpleName()!s}: {text or 'no message'}"
    values = _message_parameters(throwable).get("values")
    if values and "CONSTRAINT" in condition:
        text = text.split(" violated by row", 1)[0] + " violated by row with values: " + ", ".join(
            ln.strip().removeprefix("- ").strip() for ln in values.splitlines() if ln.strip())
    return f"{condition}: {text or 'no message'}"


def _java_condition(throwable: Any) -> str | None:
    from py4j.java_gateway import is_instance_of
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    if gateway is None or not is_instance_of(gateway, throwable, "org.apache.spark.SparkThrowable"):
        return None
    for getter in ("getCondition", "getErrorClass"):  # Spark 4 renamed it; Delta's may answer either
        with contextlib.suppress(Exception):
            if condition := getattr(throwable, getter)():
                return str(condition)
    return None


def _message_parameters(throwable: Any) -> dict[str, str]:
    with contextlib.suppress(Exception):
        return {str(k): str(v) for k, v in dict(throwable.getMessageParameters()).items()}
    return {}


def _one_line(message: str, condition: str | None) -> str:
    """The first non-empty line of `message`, without its leading `[ERROR_CLASS] `."""
    first = next((ln.strip() for ln in message.splitlines() if ln.strip()), "")
    if condition and first.startswith(f"[{condition}]"):
        first = first[len(condition) + 2:].strip()
    return first[:1000]
