"""lakecast_forecaster."""
