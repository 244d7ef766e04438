"""Fixtures for the trading page's end-to-end tests: Debian's chromium, the page's install step,
a static server for module-level checks, and a real exchange (Redis, engine, two gateways).

Every test here is marked ``e2e`` and needs ``/usr/bin/chromium`` (the test command installs it;
Playwright's own browser downloads are never used). Without chromium the tests fail with that reason:
a browser test that did not run is not a browser test that passed.
"""

from __future__ import annotations

import functools
import http.server
import mimetypes
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Playwright, sync_playwright

from tests.e2e.support import CHROMIUM
from tests.fixtures.exchange import Exchange

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "tradewire" / "web"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end test in a real browser (needs /usr/bin/chromium)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session", autouse=True)
def chromium_installed() -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is not installed (apt-get install chromium, or run ./scripts/test)")


@pytest.fixture(scope="session")
def web_installed() -> Path:
    """The page's install step (fetches lightweight-charts once; a no-op when installed)."""
    subprocess.run([str(ROOT / "scripts" / "web-install")], check=True, timeout=300)
    return WEB


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    """Playwright's sync API runs an event loop on this thread while it lives: end it with the e2e
    package so that the asyncio tests after it start with no running loop."""
    with sync_playwright() as p:
        yield p


mimetypes.add_type("text/javascript", ".js")  # ES modules need a JavaScript MIME type


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def static_url(web_installed: Path) -> Iterator[str]:
    """The page's static files alone, for checks of its modules that need no exchange."""
    handler = functools.partial(_QuietHandler, directory=str(web_installed / "static"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def page_exchange(web_installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    """One exchange per test module, with two gateways: the page uses 0, tests may use either.

    Every browser and API client of a test comes from 127.0.0.1, so the per-IP REST weight limit
    (meant for one trader) is raised; the page's own requests stay what they are.
    """
    with Exchange(
        tmp_path_factory.mktemp("exchange"),
        gateways=2,
        gateway_env={"TRADEWIRE_LIMIT_WEIGHT_PER_MINUTE": "1000000"},
    ) as ex:
        yield ex
