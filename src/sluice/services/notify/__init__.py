"""Notifications: audit events turned into messages to people and shared places (email, Slack,
Teams) through the outbox, at least once and never in the way of grant work."""
