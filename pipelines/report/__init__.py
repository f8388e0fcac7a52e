"""`lakecast report`: one self-contained HTML page of live accuracy (data from the governed tables, SVG drawn here)."""
