"""Find the Java that Spark will start, and refuse one too old for Spark 4, before launching it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from conf.errors import SessionError

MIN_JAVA = 17


def find_java() -> str | None:
    """The `java` Spark's launcher starts: JAVA_HOME's when set, else the one on PATH (None: none)."""
    if os.environ.get("JAVA_HOME"):
        return str(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
    return shutil.which("java")


def java_major_version(java: str | None = None) -> int:
    """Major version of the `java` on PATH (or JAVA_HOME); raises SessionError if none."""
    java = java or find_java()
    if not java or not Path(java).exists():
        raise SessionError(
            f"Java was not found (JAVA_HOME={os.environ.get('JAVA_HOME')!r}, no `java` on PATH). "
            f"Spark needs Java {MIN_JAVA}+: install it (e.g. `apt-get install openjdk-17-jre-headless`) "
            "or set JAVA_HOME."
        )
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SessionError(f"could not run {java} -version: {e}") from e
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not m:
        raise SessionError(f"could not read the Java version from `{java} -version`: {out.strip()!r}")
    major = int(m.group(1))
    if major == 1 and m.group(2):  # "1.8.0_x" style
        major = int(m.group(2))
    return major


def check_java() -> None:
    major = java_major_version()
    if major < MIN_JAVA:
        raise SessionError(
            f"Java {major} found, but Spark 4 needs Java {MIN_JAVA} or newer: install Java 17 "
            "and point JAVA_HOME at it."
        )
