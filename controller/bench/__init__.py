"""Benchmarks behind `yimen bench …`."""
