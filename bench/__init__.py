"""Benchmarks of the IdP: `python -m bench.load` (see bench/README.md) and `bench/audit_events.py`."""
