"""A real headless browser for the tests: Debian's chromium and its driver, driven by Selenium.

Installed with apt-get on first use when missing (as root, the CI machine); elsewhere the test
that needs it is skipped with the command to run (`tests.system_packages`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.system_packages import ensure_packages

PACKAGES = ("chromium", "chromium-driver")


def ensure_chromium() -> tuple[str, str] | str:
    """(chromium, chromedriver) paths, installing the packages when missing; else why not (a string)."""
    found = ensure_packages(PACKAGES, ("chromium", "chromedriver"))
    return found if isinstance(found, str) else (found[0], found[1])


@contextmanager
def headless(browser: str, driver: str) -> Iterator[Any]:
    """A Selenium Chrome session on the system chromium, offline: every host name fails to resolve."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1300,2000"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(options=opts, service=Service(executable_path=driver))
    try:
        yield session
    finally:
        session.quit()


CHARTS_JS = """
return Array.from(document.querySelectorAll('svg.chart')).map(s => {
  const box = s.getBoundingClientRect();
  const marks = Array.from(s.querySelectorAll('polyline, polygon, circle'));
  const drawn = marks.filter(m => { const b = m.getBBox(); return b.width > 0 || b.height > 0; }).length;
  return {id: s.id, width: box.width, height: box.height, marks: marks.length, drawn: drawn,
          empty: s.classList.contains('empty')};
});
"""


def load_page(session: Any, page: Path) -> dict[str, Any]:
    """Open `page`; what rendered: its charts, console errors, network requests."""
    session.get(page.resolve().as_uri())
    return {
        "title": session.title,
        "charts": session.execute_script(CHARTS_JS),
        "errors": [e for e in session.get_log("browser") if e["level"] == "SEVERE"],
        "requests": session.execute_script("return performance.getEntriesByType('resource').length"),
    }
