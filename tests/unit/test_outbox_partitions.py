"""The relay partitions records exactly as aiokafka's `send` would."""

import os

from aiokafka.partitioner import DefaultPartitioner, murmur2

from shared import outbox


def test_murmur2_and_partitions_match_aiokafka_for_every_key_length() -> None:
    keys = [os.urandom(n) for n in range(0, 70) for _ in range(50)] + [
        f"LN{i:09d}".encode() for i in range(3000)
    ]
    partitions = list(range(6))
    default = DefaultPartitioner()
    assert [outbox.murmur2(k) for k in keys] == [murmur2(k) for k in keys]
    assert outbox.murmur2_many(keys) == [murmur2(k) for k in keys]
    assert outbox.murmur2_many(keys[:5]) == [murmur2(k) for k in keys[:5]]
    assert [outbox._partition(k, partitions) for k in keys] == [
        default(k, partitions, partitions) for k in keys
    ]
    assert outbox._partition(None, partitions) in partitions
    # The relay's bundle path: partitions from the hashes computed a bundle at a time.
    hashes = outbox.murmur2_many(keys)
    assert [partitions[(h & 0x7FFFFFFF) % len(partitions)] for h in hashes] == [
        default(k, partitions, partitions) for k in keys
    ]
