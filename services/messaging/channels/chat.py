"""Chat-app robots, each with its own payload, signature and answer format. Pure.

A chat message goes to a group robot URL: the target's ``url``, else the one configured
for the channel. The target's ``user_id`` (the contact's id in that app) is mentioned.

- **Feishu/Lark custom bot**: ``{"msg_type": "post", "content": {"post": {"zh_cn":
  {"title", "content": [[text], [at]]}}}}``; with a signature secret, ``timestamp`` (Unix
  seconds) and ``sign`` = base64(HMAC-SHA256 keyed with ``"{timestamp}\\n{secret}"`` over
  nothing) are added to the body. Answer ``{"code": 0}`` (older bots:
  ``{"StatusCode": 0}``).
- **DingTalk robot**: ``{"msgtype": "markdown", "markdown": {"title", "text"}, "at":
  {"atUserIds", "isAtAll": false}}``; with a secret, the URL gets ``timestamp`` (Unix ms)
  and ``sign`` = base64(HMAC-SHA256 keyed with the secret over
  ``"{timestamp}\\n{secret}"``). Answer ``{"errcode": 0}``; 130101 is its rate limit.
- **WeCom group robot**: ``{"msgtype": "text", "text": {"content", "mentioned_list"}}``
  (content at most 2048 bytes). Answer ``{"errcode": 0}``; 45009 is its rate limit.
- **Slack incoming webhook**: ``{"text", "blocks": [header, section]}``; answer ``ok``,
  429 with ``Retry-After`` when limited.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from services.messaging.channels.base import SendResult
from services.messaging.channels.requests import HttpAnswer, HttpRequest, by_status, retry_after
from services.messaging.deliveries.message import Message

FEISHU_RETRYABLE_CODES = frozenset({9499, 11232, 11233})
"""Feishu: too many requests / frequency limited."""
DINGTALK_RETRYABLE_CODES = frozenset({-1, 130101})
"""DingTalk: system busy / sending too fast."""
WECOM_RETRYABLE_CODES = frozenset({-1, 45009})
"""WeCom: system busy / API frequency out of limit."""
WECOM_MAX_BYTES = 2048


def _json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _headers(message: Message) -> dict[str, str]:
    return {"content-type": "application/json", "idempotency-key": message.delivery_id}


def fit_bytes(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, never inside a character."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[: limit - 3].decode("utf-8", "ignore") + "..."


def feishu_sign(timestamp: int, secret: str) -> str:
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def dingtalk_sign(timestamp_ms: int, secret: str) -> str:
    signed = f"{timestamp_ms}\n{secret}".encode()
    return base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()


def _code_result(
    answer: HttpAnswer, now: datetime, code_field: str, retryable: frozenset[int]
) -> SendResult:
    """Chat robots answer HTTP 200 with an error code in the body."""
    if not 200 <= answer.status < 300:
        return by_status(answer, now, None)
    try:
        document = json.loads(answer.content)
    except ValueError:
        return SendResult.permanent(f"unreadable answer: {answer.content[:200]!r}")
    if not isinstance(document, dict):
        return SendResult.permanent(f"unexpected answer: {answer.content[:200]!r}")
    code = document.get(code_field, document.get("StatusCode", 0))
    if code == 0:
        return SendResult.sent(None)
    reason = f"{code_field} {code}: {document.get('msg') or document.get('errmsg') or ''}"
    if code in retryable:
        return SendResult.retryable(reason, retry_after(answer.headers, now))
    return SendResult.permanent(reason)


@dataclass(frozen=True, slots=True)
class FeishuFormat:
    default_url: str | None
    secret: str | None

    def request(self, message: Message, now: datetime) -> HttpRequest:
        lines: list[list[dict[str, str]]] = [[{"tag": "text", "text": message.body}]]
        if message.target.get("user_id"):
            lines.append([{"tag": "at", "user_id": message.target["user_id"]}])
        document: dict[str, Any] = {
            "msg_type": "post",
            "content": {"post": {"zh_cn": {"title": message.subject, "content": lines}}},
        }
        if self.secret:
            timestamp = int(now.timestamp())
            document = {
                "timestamp": str(timestamp),
                "sign": feishu_sign(timestamp, self.secret),
                **document,
            }
        return HttpRequest(_url(message, self.default_url), _headers(message), _json(document))

    def result(self, answer: HttpAnswer, now: datetime) -> SendResult:
        return _code_result(answer, now, "code", FEISHU_RETRYABLE_CODES)


@dataclass(frozen=True, slots=True)
class DingTalkFormat:
    default_url: str | None
    secret: str | None

    def request(self, message: Message, now: datetime) -> HttpRequest:
        user_id = message.target.get("user_id")
        mention = f"\n\n@{user_id}" if user_id else ""
        document = {
            "msgtype": "markdown",
            "markdown": {
                "title": message.subject,
                "text": f"### {message.subject}\n\n{message.body}{mention}",
            },
            "at": {"atUserIds": [user_id] if user_id else [], "isAtAll": False},
        }
        url = _url(message, self.default_url)
        if self.secret:
            timestamp_ms = int(now.timestamp() * 1000)
            query = urlencode(
                {"timestamp": timestamp_ms, "sign": dingtalk_sign(timestamp_ms, self.secret)}
            )
            url = f"{url}{'&' if '?' in url else '?'}{query}"
        return HttpRequest(url, _headers(message), _json(document))

    def result(self, answer: HttpAnswer, now: datetime) -> SendResult:
        return _code_result(answer, now, "errcode", DINGTALK_RETRYABLE_CODES)


@dataclass(frozen=True, slots=True)
class WeComFormat:
    default_url: str | None

    def request(self, message: Message, now: datetime) -> HttpRequest:
        text: dict[str, Any] = {
            "content": fit_bytes(f"{message.subject}\n\n{message.body}", WECOM_MAX_BYTES)
        }
        if message.target.get("user_id"):
            text["mentioned_list"] = [message.target["user_id"]]
        document = {"msgtype": "text", "text": text}
        return HttpRequest(_url(message, self.default_url), _headers(message), _json(document))

    def result(self, answer: HttpAnswer, now: datetime) -> SendResult:
        return _code_result(answer, now, "errcode", WECOM_RETRYABLE_CODES)


@dataclass(frozen=True, slots=True)
class SlackFormat:
    default_url: str | None

    def request(self, message: Message, now: datetime) -> HttpRequest:
        user_id = message.target.get("user_id")
        body = f"<@{user_id}> {message.body}" if user_id else message.body
        document = {
            "text": f"{message.subject}\n{body}",
            "blocks": [
                {
                    "type": "header",
                    "text": {"type": "plain_text", "text": message.subject[:150]},
                },
                {"type": "section", "text": {"type": "mrkdwn", "text": body[:3000]}},
            ],
        }
        return HttpRequest(_url(message, self.default_url), _headers(message), _json(document))

    def result(self, answer: HttpAnswer, now: datetime) -> SendResult:
        return by_status(answer, now, None)


def _url(message: Message, default_url: str | None) -> str:
    url = message.target.get("url") or default_url
    if not url:
        raise ValueError(f"no robot URL for the {message.channel} channel: set one")
    return url
