"""Prometheus metrics: request counts and latencies, records accepted and rejected.

Labels are route templates and counts only, never values from a request.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.responses import Response

REQUESTS = Counter("ttp_requests_total", "HTTP requests", ["service", "method", "route", "status"])
LATENCY = Histogram(
    "ttp_request_seconds", "HTTP request latency", ["service", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RECORDS = Counter("ttp_records_total", "Records by outcome at ingest", ["outcome"])


def observe_request(service: str, method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(service, method, route, str(status)).inc()
    LATENCY.labels(service, route).observe(seconds)


def count_records(outcome: str, n: int) -> None:
    if n:
        RECORDS.labels(outcome).inc(n)


def response() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
