"""Yimen (一门) hall controller: queue core, engine, storage and the doors into them."""

__version__ = "0.1.0"
