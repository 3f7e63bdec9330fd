"""The email adapter: one SMTP transaction per message with aiosmtplib.

The ``Message-ID`` is built from the delivery id, so a repeated attempt carries the same
id and mail systems can drop the copy. A target's ``unsubscribe_url`` becomes the
``List-Unsubscribe`` header with one-click unsubscribe (RFC 8058). A 5xx answer is
permanent; when it refuses the recipient it is a bounce (``bounced``: the address is
dead), when it rejects the message it is not. A 4xx answer, a timeout or a lost
connection is retryable.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formataddr, formatdate

import aiosmtplib

from services.messaging.channels.base import SendResult
from services.messaging.deliveries.message import Message


def message_id_of(delivery_id: str) -> str:
    return f"<{delivery_id}@milepost>"


def build_email(message: Message, sender: str) -> EmailMessage:
    """The MIME message for ``message`` (``KeyError`` without an ``email`` target)."""
    email = EmailMessage()
    email["From"] = sender
    email["To"] = formataddr((message.target.get("name", ""), message.target["email"]))
    email["Subject"] = message.subject
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = message_id_of(message.delivery_id)
    email["X-Milepost-Delivery"] = message.delivery_id
    unsubscribe = message.target.get("unsubscribe_url")
    if unsubscribe:
        email["List-Unsubscribe"] = f"<{unsubscribe}>"
        email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email.set_content(message.body)
    return email


class EmailChannel:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout_seconds: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.username = username
        self.password = password
        self.starttls = starttls
        self.timeout_seconds = timeout_seconds

    async def send(self, message: Message) -> SendResult:
        try:
            email = build_email(message, self.sender)
        except KeyError:
            return SendResult.permanent("the target has no email address")
        try:
            refused, _response = await aiosmtplib.send(
                email,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                start_tls=self.starttls,
                timeout=self.timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return _refused({r.recipient: (r.code, r.message) for r in exc.recipients})
        except aiosmtplib.SMTPResponseException as exc:
            reason = f"SMTP {exc.code}: {exc.message}"
            if exc.code >= 500:
                return SendResult.permanent(reason)
            return SendResult.retryable(reason)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return SendResult.retryable(f"SMTP {type(exc).__name__}: {exc}")
        if refused:
            return _refused(dict(refused))
        return SendResult.sent(message_id_of(message.delivery_id))


def _refused(recipients: dict[str, tuple[int, str]]) -> SendResult:
    reason = "; ".join(f"{who}: {code} {text}" for who, (code, text) in recipients.items())
    if all(code >= 500 for code, _ in recipients.values()):
        return SendResult.permanent(f"recipient refused (bounce): {reason}", bounced=True)
    return SendResult.retryable(f"recipient deferred: {reason}")
