"""Audit events and the webhook outbox, written in the caller's transaction."""
