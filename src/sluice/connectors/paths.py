"""Resource paths and tags shared by every connector.

A resource path is `{integration}/{segment}/{segment}...`; each segment is a name from the target with
`%` and `/` percent-escaped, so any name fits in one segment and the path splits back unambiguously.
Tags come from a `sluice: k=v k2=v2` line in a comment or description the target keeps on the object.
"""

from __future__ import annotations

import re

_ESCAPED = re.compile(r"%(25|2[Ff])")
_TAG_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$")
_TAG_LINE = re.compile(r"^\s*sluice:(.*)$")


def path_segment(name: str) -> str:
    """One segment of a resource path: `%` becomes `%25` and `/` becomes `%2F`, nothing else changes."""
    return name.replace("%", "%25").replace("/", "%2F")


def segment_name(segment: str) -> str:
    """The inverse of `path_segment`."""
    return _ESCAPED.sub(lambda m: "%" if m.group(1) == "25" else "/", segment)


def split_path(integration: str, path: str) -> list[str] | None:
    """The names in a resource path of `integration`, or None when the path is not one of its paths
    (another integration's, empty, or with an empty segment)."""
    head = integration + "/"
    if not path.startswith(head):
        return None
    names = [segment_name(p) for p in path[len(head) :].split("/")]
    if any(not n or "\0" in n for n in names):
        return None
    return names


def parse_tags(comment: str | None) -> dict[str, str]:
    """Tags from a `sluice: k=v k2=v2` line of an object's comment; malformed pairs are ignored."""
    tags: dict[str, str] = {}
    for line in (comment or "").splitlines():
        match = _TAG_LINE.match(line)
        if not match:
            continue
        for pair in match.group(1).split():
            key, sep, value = pair.partition("=")
            if sep and value and "=" not in value and _TAG_KEY.match(key):
                tags[key] = value
    return tags
