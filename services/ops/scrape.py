"""Each service's health as its own /metrics tells it: the console reads no service's schema.

The outbox backlog and the service's own consumer lag are gauges the service computes when
scraped, so the console sees the same numbers Prometheus does, and a service that does not
answer shows as down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from shared.metrics import OPS_SCRAPE_UP

# metric name → how its samples are summed into one number per service
_SUMMED = {
    "fieldcollect_outbox_backlog_messages": "outbox_backlog",
    "fieldcollect_outbox_oldest_age_seconds": "outbox_oldest_age_s",
    "fieldcollect_outbox_relay_leader": "relay_leader",
    "fieldcollect_events_produced_total": "events_produced",
    "fieldcollect_events_consumed_total": "events_consumed",
    "fieldcollect_events_dead_lettered_total": "dead_lettered",
    "fieldcollect_consumer_lag_messages": "consumer_lag",
}


@dataclass
class ServiceHealth:
    service: str
    url: str
    up: bool
    error: str | None = None
    figures: dict[str, float] = field(default_factory=dict)
    http_5xx: float = 0.0
    http_total: float = 0.0
    scraped_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "up": self.up,
            "error": self.error,
            **{name: self.figures.get(name) for name in _SUMMED.values()},
            "http_requests": self.http_total,
            "http_5xx": self.http_5xx,
            "scraped_at": self.scraped_at,
        }


def summarize(service: str, url: str, text: str) -> ServiceHealth:
    """One service's figures from its Prometheus text exposition."""
    health = ServiceHealth(service, url, up=True)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name
            if name in _SUMMED:
                key = _SUMMED[name]
                health.figures[key] = health.figures.get(key, 0.0) + sample.value
            elif name == "fieldcollect_http_requests_total":
                health.http_total += sample.value
                if sample.labels.get("status", "").startswith("5"):
                    health.http_5xx += sample.value
    return health


async def scrape_one(client: httpx.AsyncClient, service: str, base_url: str) -> ServiceHealth:
    url = base_url.rstrip("/") + "/metrics"
    try:
        response = await client.get(url, timeout=3.0)
        response.raise_for_status()
        health = summarize(service, base_url, response.text)
    except (httpx.HTTPError, ValueError) as exc:
        health = ServiceHealth(service, base_url, up=False, error=type(exc).__name__)
    OPS_SCRAPE_UP.labels(service).set(int(health.up))
    return health


async def scrape_all(client: httpx.AsyncClient, targets: Mapping[str, str]) -> list[ServiceHealth]:
    return list(await asyncio.gather(*(scrape_one(client, name, url) for name, url in targets.items())))
