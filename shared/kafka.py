"""Kafka clients configured the one way every service uses them."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.settings import ServiceSettings

log = logging.getLogger(__name__)


def make_producer(settings: ServiceSettings, client_id: str) -> AIOKafkaProducer:
    """acks=all always; idempotence where the broker supports it (on in production)."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=15000,
    )


async def ensure_topics(
    bootstrap_servers: str,
    topics: Iterable[str],
    partitions: int = 6,
    replication_factor: int = 1,
) -> list[str]:
    """Create the topics that are missing; returns those created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    created: list[str] = []
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in topics if t not in existing]
        for topic in wanted:
            try:
                await admin.create_topics(
                    [NewTopic(topic, num_partitions=partitions, replication_factor=replication_factor)]
                )
                created.append(topic)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()
    if created:
        log.info("topics created", extra={"topics": created, "partitions": partitions})
    return created
