"""The `sluice` command line: store-direct admin commands, the servers, and an HTTP client."""
