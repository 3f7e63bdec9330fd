from tests.services.scoring.support import bus, harness, sessions

__all__ = ["bus", "harness", "sessions"]
