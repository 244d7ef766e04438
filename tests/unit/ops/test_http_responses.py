"""The ops endpoints' answers, built without a server."""

from __future__ import annotations

import orjson
from prometheus_client import CollectorRegistry, Counter

from tradewire.ops.http import Readiness, route


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    counter = Counter("tradewire_example_total", "An example.", registry=registry)
    counter.inc(3)
    return registry


def _ready(answer: tuple[bool, str]) -> Readiness:
    return lambda: answer


def test_metrics_with_plain_scraper_is_prometheus_text_with_samples() -> None:
    response = route("GET", "/metrics", None, _ready((True, "")), _registry())
    assert response.status == 200
    assert response.content_type.startswith("text/plain")
    assert b"tradewire_example_total 3.0" in response.body


def test_metrics_with_openmetrics_accept_header_is_openmetrics() -> None:
    accept = "application/openmetrics-text; version=1.0.0"
    response = route("GET", "/metrics?x=1", accept, _ready((True, "")), _registry())
    assert response.content_type.startswith("application/openmetrics-text")
    assert response.body.endswith(b"# EOF\n")


def test_healthz_with_any_readiness_is_alive() -> None:
    response = route("GET", "/healthz", None, _ready((False, "replaying")), _registry())
    assert response.status == 200
    assert orjson.loads(response.body) == {"alive": True}


def test_readyz_with_ready_process_is_200_with_reason() -> None:
    response = route("GET", "/readyz", None, _ready((True, "live at 5-0")), _registry())
    assert response.status == 200
    assert orjson.loads(response.body) == {"ready": True, "reason": "live at 5-0"}


def test_readyz_with_unready_process_is_503_with_reason() -> None:
    response = route("GET", "/readyz", None, _ready((False, "replaying journal")), _registry())
    assert response.status == 503
    assert orjson.loads(response.body) == {"ready": False, "reason": "replaying journal"}


def test_readyz_with_failing_check_is_503_naming_the_error() -> None:
    def broken() -> tuple[bool, str]:
        raise ConnectionError("redis gone")

    response = route("GET", "/readyz", None, broken, _registry())
    assert response.status == 503
    assert orjson.loads(response.body)["reason"] == "readiness check failed: ConnectionError: redis gone"


def test_route_with_unknown_path_is_404() -> None:
    assert route("GET", "/nope", None, _ready((True, "")), _registry()).status == 404


def test_route_with_post_is_405() -> None:
    assert route("POST", "/metrics", None, _ready((True, "")), _registry()).status == 405
