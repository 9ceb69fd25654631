"""A control plane in another language: publishes one route change with the
official Python client (C++ inside), in the format docs/pulsar.md documents.

route_publish.py URL TOKEN TOPIC KEY JSON
"""
import sys

import pulsar


def main() -> None:
    url, token, topic, key, payload = sys.argv[1:6]
    client = pulsar.Client(url, authentication=pulsar.AuthenticationToken(token), logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
    try:
        producer = client.create_producer(topic)
        producer.send(payload.encode(), partition_key=key, properties={"kakehi-format": "1"})
        producer.flush()
    finally:
        client.close()


if __name__ == "__main__":
    main()
