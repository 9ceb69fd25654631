"""Independent peer for the interop test: the official Python client (C++ inside).

produce URL TOKEN TOPIC COMPRESSION N: N keyed messages with properties, batched
and compressed, then a tombstone for key "tomb". consume URL TOKEN TOPIC N: reads
N messages from earliest and prints one JSON line each.
"""
import json
import sys

import pulsar


def main() -> None:
    mode, url, token, topic = sys.argv[1:5]
    client = pulsar.Client(url, authentication=pulsar.AuthenticationToken(token), logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
    try:
        if mode == "produce":
            compression, n = sys.argv[5], int(sys.argv[6])
            producer = client.create_producer(
                topic,
                compression_type=getattr(pulsar.CompressionType, compression),
                batching_enabled=True,
                batching_max_messages=10,
                batching_max_publish_delay_ms=100,
            )
            failures = []
            for i in range(n):
                producer.send_async(
                    f"py{i}:{'z' * 200}".encode(),
                    lambda res, _id: failures.append(res) if res != pulsar.Result.Ok else None,
                    partition_key=f"k{i}",
                    properties={"i": str(i)},
                )
            producer.flush()
            producer.send(b"", partition_key="tomb")
            producer.close()
            if failures:
                raise SystemExit(f"send failures: {failures}")
        elif mode == "consume":
            n = int(sys.argv[5])
            reader = client.create_reader(topic, pulsar.MessageId.earliest)
            for _ in range(n):
                m = reader.read_next(30000)
                print(json.dumps({"data": m.data().decode(), "key": m.partition_key(), "props": m.properties()}), flush=True)
            reader.close()
        else:
            raise SystemExit(f"unknown mode {mode}")
    finally:
        client.close()


if __name__ == "__main__":
    main()
