"""Connectors: one module per kind of target, all behind the `Connector` protocol in `base.py`."""
