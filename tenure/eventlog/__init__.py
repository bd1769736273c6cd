"""Tenure's side of the Kafka log: topic administration and publishing (kafka-python)."""
