"""Debian's chromium, headless, for tests of the pages people read: a screenshot, the DOM as rendered.

Each call starts its own browser with a fresh profile and waits for it (bounded); it only opens the
URL it is given (the test's own collector on loopback), with background networking off.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
         "--hide-scrollbars")
A4 = (794, 1123)  # CSS pixels of an A4 page at 96 dpi


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("chromium missing: run scripts/test.sh")
    return found


def _run(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=timeout, check=False)


def screenshot(url: str, path: Path, *, size: tuple[int, int] = A4) -> Path:
    """A PNG of the page as a browser window of ``size`` shows it."""
    done = _run(f"--screenshot={path}", f"--window-size={size[0]},{size[1]}", url)
    assert path.exists() and path.stat().st_size > 0, f"chromium made no screenshot: {done.stderr[-2000:]}"
    return path


def rendered_dom(url: str) -> str:
    """The page's DOM after the browser parsed and laid it out (not the bytes the server sent)."""
    done = _run("--dump-dom", url)
    assert done.returncode == 0 and done.stdout.strip(), f"chromium could not render {url}: {done.stderr[-2000:]}"
    return done.stdout


@contextmanager
def browser_session() -> Iterator[Any]:
    """A Selenium session with Debian's chromium through Debian's chromedriver (never a downloaded one);
    quit and its profile removed at the end."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = shutil.which("chromedriver")
    if found is None:
        pytest.skip("chromium-driver missing: run scripts/test.sh")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium()
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={A4[0]},{A4[1]}")
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        session = webdriver.Chrome(service=Service(executable_path=found), options=options)
        try:
            session.set_page_load_timeout(30)
            yield session
        finally:
            session.quit()
