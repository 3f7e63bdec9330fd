from tests.services.scoring.support import harness

__all__ = ["harness"]
