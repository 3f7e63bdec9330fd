from tests.services.messaging.own_database import own_database_url, own_postgres_url, own_sessions

__all__ = ["own_database_url", "own_postgres_url", "own_sessions"]
