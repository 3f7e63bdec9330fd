"""Database access: the async engine, sessions and the declarative base."""

from shared.db.engine import create_engine, create_session_factory
from shared.db.model_base import Base

__all__ = ["Base", "create_engine", "create_session_factory"]
