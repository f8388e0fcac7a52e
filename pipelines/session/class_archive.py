"""A class-data archive for the driver JVM, so that every fresh command starts seconds sooner.

A fresh `lakecast` process spends much of its first seconds loading and verifying the classes
of Spark, the Hive metastore client and Delta. The JDK's dynamic class-data sharing (AppCDS,
JDK 13+) maps them from an archive instead: on the 2-core development machine a session start,
the first query, the catalog's first lookup and the first Delta reads took 35.6 s without it and
27 s with it (bench/RESULTS.md, "Small runs").

The archive depends on the JVM and its class path only, not on the home, so it lives beside the
JAR cache (`<spark.ivy_dir>/class-archive`, or `spark.class_archive_dir`), one file per JVM,
pyspark version and driver class path. It is built once, in the background, by a child process
(`python -m jobs.class_archive`) that starts a session on a scratch home, does what
a command does first (creates the tables, records a run, reads a table) and exits the JVM
cleanly, which is when the JDK writes the archive; until it exists, sessions start as before.
A stale or damaged archive costs nothing but its benefit: the JVM checks it and runs without.
`spark.class_archive: false` turns all of this off.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from conf import LakecastConfig
from pipelines.session.java import find_java

log = logging.getLogger(__name__)

BUILD_TIMEOUT_S = 900  # a build lock older than this is from a build that died: taken over
RETRY_AFTER_S = 86_400  # a failed build (`.failed` beside the archive) is not retried for a day
# The JVM prints its warnings (an archive it cannot map among them) on stdout, where they would
# corrupt `lakecast sql --format json|csv`: with the archive they go to stderr instead.
# (`all=off` turns off the stdout output only: a user's or a test's -Xlog to a file is kept.)
WARNINGS_TO_STDERR = "-Xlog:all=off -Xlog:all=warning:stderr:uptime,level,tags"


def archive_path(cfg: LakecastConfig, settings: dict[str, str]) -> Path | None:
    """Where this configuration's archive is (or will be); None when there is no Java to key it by.

    The key: the Java binary (path, size, mtime: an upgrade changes it), pyspark's version and
    install folder (the JARs on the class path: the JVM refuses an archive whose class path moved,
    so two virtual environments sharing one Ivy folder need one archive each) and the driver's
    extra class path (a JDBC driver)."""
    import pyspark

    found = find_java()
    if found is None or not Path(found).exists():
        return None
    java = Path(found).resolve()
    st = java.stat()
    key = "|".join((str(java), str(st.st_size), str(int(st.st_mtime)), pyspark.__version__,
                    str(Path(pyspark.__file__).resolve().parent), settings.get("spark.driver.extraClassPath", "")))
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    folder = cfg.spark.class_archive_dir or cfg.ivy_dir / "class-archive"
    return Path(folder).resolve() / f"driver-{digest}.jsa"


def java_options(cfg: LakecastConfig, settings: dict[str, str]) -> str:
    """The driver JVM options that map the archive, when there is one (and send the JVM's
    warnings to stderr); else "" (and a build is started in the background, once)."""
    if not cfg.spark.class_archive or os.environ.get("PYSPARK_GATEWAY_PORT"):
        return ""  # off, or the JVM was started by spark-submit already
    path = archive_path(cfg, settings)
    if path is None:
        return ""
    if path.is_file():
        return f"-XX:SharedArchiveFile={path} {WARNINGS_TO_STDERR}"
    _start_build(cfg, path, settings.get("spark.driver.extraClassPath", ""))
    return ""


def _start_build(cfg: LakecastConfig, path: Path, class_path: str) -> None:
    """Start the builder in the background unless one is at work on `path` already, or one failed
    within `RETRY_AFTER_S` (its log says why). It starts its JVM with the same `class_path` ahead of
    Spark's: the JVM maps an archive only for the class path it was written with."""
    lock, failed = path.with_suffix(".building"), path.with_suffix(".failed")
    try:
        if failed.exists() and time.time() - failed.stat().st_mtime < RETRY_AFTER_S:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if lock.exists() and time.time() - lock.stat().st_mtime > BUILD_TIMEOUT_S:
            lock.unlink(missing_ok=True)
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    except OSError as e:  # a read-only cache (a baked image): no archive, sessions start as before
        log.debug("no class archive at %s: %s", path, e)
        return
    os.close(fd)
    env = {k: v for k, v in os.environ.items() if k != "LAKECAST_HOME"}
    with open(path.with_suffix(".log"), "ab") as out:
        nice = ["nice", "-n", "10"] if shutil.which("nice") else []  # below the command that started it
        subprocess.Popen([*nice, sys.executable, "-m", "jobs.class_archive", str(path), str(cfg.ivy_dir), class_path],
                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                         cwd=Path(__file__).resolve().parents[2], start_new_session=True)
    log.info("building the JVM class archive in the background, once (%s): later commands start faster", path)
