"""Fake external services that speak real HTTP on loopback, for tests and benchmarks."""
