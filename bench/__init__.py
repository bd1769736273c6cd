"""Benchmarks of Tenure's ingest path, each measured against a baseline in the same run.

Run everything with ``python -m bench``; see ``python -m bench --help`` and ``BENCHMARKS.md``.
Every benchmark prints one JSON object per line: ``name``, ``params``, ``measured``,
``baseline`` and ``ratio`` (measured cost or rate relative to the baseline; the key
``ratio_meaning`` says which).
"""
