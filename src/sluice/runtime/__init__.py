"""A process's wiring and settings: the Runtime (store, connectors, secret box, clock), settings and
tuning read from the environment, logging, the demo, the store's file permissions."""
