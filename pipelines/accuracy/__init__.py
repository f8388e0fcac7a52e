"""Forecast accuracy: forecasts joined with the actuals that arrived, as `forecast_accuracy` rows."""
