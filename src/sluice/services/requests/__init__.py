"""Asking for access: submitting, the rules a request meets, deciding, approvers, explaining."""
