"""Growth paths: the definition files, their condition language, versions and the admin API."""
