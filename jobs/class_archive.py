"""Build the driver JVM's class-data archive (`pipelines/session/class_archive.py`), in the foreground.

    python -m jobs.class_archive ARCHIVE IVY_DIR [DRIVER_CLASS_PATH]

A session that finds no archive starts this in the background, once; an image build can run it
up front. It starts a session on a scratch home, does what a command does first (creates the
tables, records a run, reads two tables) and exits the JVM cleanly, which is when the JDK
writes the archive (`-XX:ArchiveClassesAtExit`); the file then replaces ARCHIVE atomically.
"""

from __future__ import annotations

import jobs._script  # noqa: F401  - first: as a script, jobs/ must not shadow installed packages

# isort: split
import logging
import os
import sys
import tempfile
import threading
from pathlib import Path

log = logging.getLogger(__name__)


def build(path: Path, ivy_dir: Path, class_path: str = "", *, timeout_s: float = 300.0) -> bool:
    """Write the archive at `path` from a scratch session (the builder process's work); True when
    written. `class_path`: the sessions' `spark.driver.extraClassPath` (a JDBC driver), which must be
    the archive's too."""
    from conf import load_config
    from pipelines.flows import init_tables
    from pipelines.session.builder import build_session
    from pipelines.sinks.job_runs import record_run

    lock = path.with_suffix(".building")
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial")
    ok = False
    try:
        with tempfile.TemporaryDirectory(prefix="lakecast-class-archive-") as home:
            cfg = load_config(overrides=[f"home={home}", f"spark.ivy_dir={ivy_dir}", "spark.class_archive=false"])
            conf = {**cfg.spark.conf, "spark.driver.extraJavaOptions": f"-XX:ArchiveClassesAtExit={partial}"}
            if class_path:
                conf["spark.driver.extraClassPath"] = class_path
            cfg = cfg.model_copy(update={"spark": cfg.spark.model_copy(update={"conf": conf})})
            spark = build_session(cfg)
            init_tables.run(spark, cfg)
            with record_run(spark, cfg, "class-archive", {}):
                spark.table(cfg.table("forecasts")).count()
                spark.table(cfg.table("observations")).where("series_id = 'x'").collect()
            sc = spark.sparkContext
            jvm, launcher = sc._jvm, getattr(sc._gateway, "proc", None)
            assert jvm is not None and launcher is not None
            # The JDK writes the archive when the JVM exits normally: exit it (py4j then loses it).
            threading.Thread(target=lambda: jvm.java.lang.System.exit(0), daemon=True).start()
            launcher.wait(timeout=timeout_s)
            if not partial.is_file() or not partial.stat().st_size:
                log.warning("the JVM wrote no class archive at %s", partial)
                return False
            partial.replace(path)
            path.with_suffix(".failed").unlink(missing_ok=True)
            log.info("class archive written: %s (%d MB)", path, path.stat().st_size >> 20)
            ok = True
            return True
    finally:
        if not ok:  # sessions do not start another build for a day (`class_archive.RETRY_AFTER_S`)
            path.with_suffix(".failed").touch()
        partial.unlink(missing_ok=True)
        lock.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    return 0 if build(Path(argv[0]), Path(argv[1]), argv[2] if len(argv) == 3 else "") else 1


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    code = main(sys.argv[1:])
    logging.shutdown()
    os._exit(code)  # not sys.exit: py4j's threads would wait on the JVM that exited
