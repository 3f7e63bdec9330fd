"""The chat robots against a local HTTP server: exact payloads, signatures and answers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from services.messaging.channels.chat import (
    DingTalkFormat,
    FeishuFormat,
    SlackFormat,
    WeComFormat,
    fit_bytes,
)
from services.messaging.channels.http import HttpClient, HttpFormat
from tests.services.messaging.channels.support import NOW, http_channel, message
from tests.services.messaging.http_sink import Answer, Sink

SECRET = "SEC0123456789abcdef"


async def test_feishu_posts_rich_text_with_the_mention_and_its_signature(
    sink: Sink, client: HttpClient
) -> None:
    channel = http_channel(FeishuFormat(f"{sink.url}/open-apis/bot/v2/hook/abc", SECRET), client)
    sink.answer(Answer(200, b'{"code":0,"msg":"success","data":{}}'))

    result = await channel.send(message(channel="feishu", target={"user_id": "ou_123"}))

    assert result.outcome == "sent"
    (request,) = sink.received
    assert request.path == "/open-apis/bot/v2/hook/abc"
    timestamp = int(NOW.timestamp())
    expected_sign = base64.b64encode(
        hmac.new(f"{timestamp}\n{SECRET}".encode(), b"", hashlib.sha256).digest()
    ).decode()
    assert request.json() == {
        "timestamp": str(timestamp),
        "sign": expected_sign,
        "msg_type": "post",
        "content": {
            "post": {
                "zh_cn": {
                    "title": "Finish your profile",
                    "content": [
                        [{"tag": "text", "text": "Two steps left."}],
                        [{"tag": "at", "user_id": "ou_123"}],
                    ],
                }
            }
        },
    }
    assert request.headers["idempotency-key"].startswith("dlv_")


async def test_feishu_without_a_secret_sends_no_signature(sink: Sink, client: HttpClient) -> None:
    sink.answer(Answer(200, b'{"code":0}'))
    target = {"url": f"{sink.url}/hook"}
    await http_channel(FeishuFormat(None, None), client).send(
        message(channel="feishu", target=target)
    )
    assert set(sink.received[0].json()) == {"msg_type", "content"}


async def test_dingtalk_signs_the_url_and_mentions_the_user(sink: Sink, client: HttpClient) -> None:
    url = f"{sink.url}/robot/send?access_token=tok"
    channel = http_channel(DingTalkFormat(url, SECRET), client)
    sink.answer(Answer(200, b'{"errcode":0,"errmsg":"ok"}'))

    result = await channel.send(message(channel="dingtalk", target={"user_id": "u-77"}))

    assert result.outcome == "sent"
    (request,) = sink.received
    assert request.path == "/robot/send"
    timestamp = int(NOW.timestamp() * 1000)
    assert request.query["access_token"] == "tok"
    assert request.query["timestamp"] == str(timestamp)
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), f"{timestamp}\n{SECRET}".encode(), hashlib.sha256).digest()
    ).decode()
    assert request.query["sign"] == expected
    assert request.json() == {
        "msgtype": "markdown",
        "markdown": {
            "title": "Finish your profile",
            "text": "### Finish your profile\n\nTwo steps left.\n\n@u-77",
        },
        "at": {"atUserIds": ["u-77"], "isAtAll": False},
    }


async def test_wecom_posts_text_with_the_mention(sink: Sink, client: HttpClient) -> None:
    channel = http_channel(WeComFormat(f"{sink.url}/cgi-bin/webhook/send?key=k"), client)
    sink.answer(Answer(200, b'{"errcode":0,"errmsg":"ok"}'))

    result = await channel.send(message(channel="wecom", target={"user_id": "zhangsan"}))

    assert result.outcome == "sent"
    (request,) = sink.received
    assert request.query == {"key": "k"}
    assert request.json() == {
        "msgtype": "text",
        "text": {
            "content": "Finish your profile\n\nTwo steps left.",
            "mentioned_list": ["zhangsan"],
        },
    }


async def test_slack_posts_blocks_with_a_text_fallback(sink: Sink, client: HttpClient) -> None:
    channel = http_channel(SlackFormat(None), client)

    result = await channel.send(
        message(channel="slack", target={"url": f"{sink.url}/services/T/B/x", "user_id": "U1"})
    )

    assert result.outcome == "sent"
    assert sink.received[0].json() == {
        "text": "Finish your profile\n<@U1> Two steps left.",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Finish your profile"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "<@U1> Two steps left."}},
        ],
    }


@pytest.mark.parametrize(
    ("spelling", "answer", "outcome"),
    [
        (FeishuFormat(None, None), Answer(200, b'{"code":9499,"msg":"too many"}'), "retryable"),
        (FeishuFormat(None, None), Answer(200, b'{"code":19021,"msg":"sign"}'), "permanent"),
        (FeishuFormat(None, None), Answer(200, b'{"StatusCode":0}'), "sent"),
        (DingTalkFormat(None, None), Answer(200, b'{"errcode":130101}'), "retryable"),
        (DingTalkFormat(None, None), Answer(200, b'{"errcode":310000}'), "permanent"),
        (WeComFormat(None), Answer(200, b'{"errcode":45009}'), "retryable"),
        (WeComFormat(None), Answer(200, b'{"errcode":93000}'), "permanent"),
        (WeComFormat(None), Answer(502, b"bad gateway"), "retryable"),
        (SlackFormat(None), Answer(404, b"channel_not_found"), "permanent"),
        (SlackFormat(None), Answer(429, b"", (("retry-after", "3"),)), "retryable"),
        (SlackFormat(None), Answer(200, b"not json"), "sent"),
        (WeComFormat(None), Answer(200, b"not json"), "permanent"),
    ],
)
async def test_answers_by_vendor(
    sink: Sink, client: HttpClient, spelling: HttpFormat, answer: Answer, outcome: str
) -> None:
    sink.answer(answer)
    result = await http_channel(spelling, client).send(message(target={"url": sink.url}))
    assert result.outcome == outcome, result.reason


async def test_a_chat_channel_without_a_url_fails_for_good(client: HttpClient) -> None:
    result = await http_channel(SlackFormat(None), client).send(message(channel="slack"))
    assert result.outcome == "permanent"
    assert "no robot URL" in (result.reason or "")


def test_wecom_content_is_cut_to_its_byte_limit_on_a_character_boundary() -> None:
    cut = fit_bytes("续约" * 2000, 2048)
    assert len(cut.encode()) <= 2048
    assert cut.endswith("...")
    assert json.dumps(cut)  # still valid text
