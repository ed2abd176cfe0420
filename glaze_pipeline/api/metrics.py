"""/metrics in Prometheus text: the reference design's queue depth, duration, throughput, success rate and costs.

Read from Postgres at each scrape (requests and the ledger), so every process serving the API reports the
same figures and the cost figures are the ledger's own sums.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from glaze_pipeline.api.reads import Figures

QUEUE = {"pending": "queued", "active": "running", "failed": "failed", "completed": "completed"}

FiguresSource = Callable[[], tuple[Figures, dict[float, int], float]]


class RequestCollector(Collector):
    def __init__(self, source: FiguresSource) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        figures, buckets, total_s = self.source()
        queue = GaugeMetricFamily("glaze_requests", "Single-record requests by state (queue depth).", labels=["state"])
        for state, status in QUEUE.items():
            queue.add_metric([state], figures.by_status.get(status, 0))
        yield queue
        yield HistogramMetricFamily(
            "glaze_request_duration_seconds",
            "Time from request to result, of finished requests.",
            buckets=[(_le(b), n) for b, n in buckets.items()],
            sum_value=total_s,
        )
        yield GaugeMetricFamily(
            "glaze_requests_per_minute",
            "Requests finished per minute over the last 5 minutes.",
            value=figures.finished_5m / 5,
        )
        rate = figures.completed_1h / figures.finished_1h if figures.finished_1h else 1.0
        yield GaugeMetricFamily("glaze_request_success_ratio", "Completed / finished over the last hour.", value=rate)
        yield CounterMetricFamily(
            "glaze_request_cache_hits", "Requests answered from the cache with no run.", value=figures.cache_hits
        )
        costs = CounterMetricFamily(
            "glaze_provider_cost_usd", "Paid calls' cost per provider (the ledger).", labels=["provider"]
        )
        for provider, cost in sorted(figures.cost_by_provider.items()):
            costs.add_metric([provider], cost)
        yield costs
        yield CounterMetricFamily(
            "glaze_cost_usd",
            "Paid calls' cost, all providers (the ledger).",
            value=sum(figures.cost_by_provider.values()),
        )
        per_job = figures.api_cost_sum / figures.api_cost_count if figures.api_cost_count else 0.0
        yield GaugeMetricFamily(
            "glaze_request_cost_usd_average", "Average cost of a finished single-record request.", value=per_job
        )


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def render(source: FiguresSource) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RequestCollector(source))
    return generate_latest(registry)
