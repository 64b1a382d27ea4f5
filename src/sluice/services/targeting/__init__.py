"""What can be asked for: inventory sync, tags, bundles, requestable, integration status."""
