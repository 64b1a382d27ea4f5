"""Configuration as code: reading, checking, planning and applying config files."""
