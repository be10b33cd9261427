"""Benchmarks, run by `make bench`. Speed is measured here, never in timed tests."""
