"""Notifications: what people and chat channels are told about requests and grants."""
