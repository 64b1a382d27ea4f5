"""The REST API under /api/v1: FastAPI routes over the services, RFC 9457 problems for every error."""
