"""Batch scoring: inference windows -> quantile forecasts in original units.

plan (driver: ScoringPlan, Lineage), kernel (pure Arrow/numpy), worker (loader cache),
fused (windows cut inside the UDF), spark (mapInArrow wiring). Never imports torch or
`models`: executors get a ready predict function from a loader.
"""
