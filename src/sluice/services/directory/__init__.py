"""People and groups: directory changes, tokens, on-call feeds and SCIM."""
