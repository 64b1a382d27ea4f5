"""SCIM 2.0 (RFC 7643/7644) at /scim/v2: identity providers push users and groups of one directory
source, authenticated by that source's SCIM token."""
