"""Spark side of lakecast: session, tables, ingest, windows, scoring and sinks."""
