from tests.directory.ldap_fixtures import any_store_sluice, directory, sluice

__all__ = ["any_store_sluice", "directory", "sluice"]
