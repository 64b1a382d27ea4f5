"""Sluice: just-in-time access, granted for real and always taken away on time."""

__version__ = "0.1.0"
