"""The messaging service's errors (contacts, playbooks, templates, policies, planning)."""

from __future__ import annotations

from shared.errors import BadRequest, Conflict, Invalid, MilepostError, NotFound


class MessagingError(MilepostError):
    """Root of the errors raised by the messaging service."""


class PlaybookNotFound(MessagingError, NotFound):
    """No published playbook (or version) by that id in the workspace."""

    field = "playbook_id"


class PlaybookUnchanged(MessagingError, Conflict):
    """The file has the same content as the playbook's current version: nothing to publish."""

    field = "source"


class ContactNotFound(MessagingError, NotFound):
    """No contact by that id in the workspace."""

    field = "contact_id"


class TemplateFailed(MessagingError, Invalid):
    """A template that does not compile or render (syntax, an undefined name, a sandbox
    refusal). The planned delivery fails with this reason; the trigger worker goes on.
    ``line`` is the template's 1-based line of a syntax error."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class TemplateLimitExceeded(TemplateFailed):
    """A template that went over one of its limits while rendering: ``limit`` is ``time``,
    ``output``, ``number``, ``range`` or ``depth`` (see ``TemplateLimits``). The delivery
    fails, or a preview answers 422, naming it."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(f"over the template {limit} limit: {message}")
        self.limit = limit


class UnsubscribeRejected(MessagingError, BadRequest):
    """An unsubscribe link whose signature does not match or that has expired; nothing is
    recorded."""

    field = "token"
