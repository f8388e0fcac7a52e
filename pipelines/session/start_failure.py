"""Turn a failed JVM start into one actionable SessionError, quoting the JVM log lines that matter."""

from __future__ import annotations

from pathlib import Path

from conf import LakecastConfig
from conf.errors import SessionError
from pipelines.session.jars import delta_package

# The message `explain_start_failure` gives for an interrupted download; the builder retries on it.
DOWNLOAD_FAILED = "download failed"


def tail_reasons(jvm_log: Path) -> list[str]:
    """The lines of the JVM log that say why it failed (unresolved modules, exceptions)."""
    try:
        lines = jvm_log.read_text(errors="replace").splitlines()[-400:]
    except OSError:
        return []
    keys = ("unresolved dependency", "::", "Exception", "Error:", "not found")
    picked = [ln.strip() for ln in lines if any(k in ln for k in keys) and not ln.startswith("\tat ")]
    return [p for p in picked if p.strip(": ")][-6:]


def explain_start_failure(e: Exception, cfg: LakecastConfig, jvm_log: Path) -> SessionError:
    text = str(e)
    reasons = tail_reasons(jvm_log)
    joined = "\n".join(reasons)
    if DOWNLOAD_FAILED in joined:
        return SessionError(
            f"Spark could not download its JARs into the Ivy cache {cfg.ivy_dir} "
            f"({delta_package()} and its dependencies come from Maven Central): {DOWNLOAD_FAILED}. "
            f"Check network access to Maven Central and retry. Full JVM log: {jvm_log}"
        )
    if "unresolved dependency" in joined or "UNRESOLVED DEPENDENCIES" in joined:
        unresolved = [r for r in reasons if "unresolved dependency" in r]
        return SessionError(
            f"Spark could not resolve its JARs into the Ivy cache {cfg.ivy_dir} "
            f"({'; '.join(unresolved) or joined}). The first run downloads Delta Lake "
            f"({delta_package()}) from Maven Central: check network access to Maven Central "
            "and the Maven coordinates in spark.extra_packages, or copy a warm Ivy cache "
            f"there. Full JVM log: {jvm_log}"
        )
    if "JAVA_GATEWAY_EXITED" in text or "Java gateway process exited" in text:
        return SessionError(
            f"the Spark JVM exited while starting: {joined or 'no reason logged'}. "
            f"Full JVM log: {jvm_log}"
        )
    return SessionError(f"Spark failed to start: {text.strip()[:1000]} (JVM log: {jvm_log})")
