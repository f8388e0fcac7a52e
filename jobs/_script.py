"""Imported first by every job module: as a script it must not shadow installed packages.

`spark-submit jobs/<job>.py` (like `python jobs/<job>.py`) puts jobs/ at the front of
sys.path, where jobs/datasets.py, jobs/sql.py ... would be found before installed packages
or stdlib modules of those names. This drops that folder from sys.path; the `jobs` package
itself still imports from the installed (or repository) location. On a normal import jobs/
is not on sys.path and this does nothing. It imports only what Python loaded at startup.
"""

import os
import sys

_HERE = os.path.dirname(os.path.realpath(__file__))
sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.curdir) != _HERE]
