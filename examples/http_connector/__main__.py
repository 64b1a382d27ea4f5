"""`python -m examples.http_connector …` runs the reference endpoint."""

from examples.http_connector.server import main

main()
