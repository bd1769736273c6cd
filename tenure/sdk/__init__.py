"""Producer SDK for telemetry producers that write to Kafka directly."""

from tenure.sdk.producer import TenureProducer

__all__ = ["TenureProducer"]
