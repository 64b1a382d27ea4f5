from tests.directory.ldap_fixtures import directory, sluice

__all__ = ["directory", "sluice"]
