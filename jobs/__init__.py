"""Thin entry points: the `lakecast` CLI and `spark-submit jobs/<job>.py` scripts."""
