"""Helpers of scripts/fuzz_queries.py, the differential query fuzzer (docs/reliability.md)."""
