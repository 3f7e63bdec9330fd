"""Consent per category, and signed, expiring unsubscribe tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.messaging.contacts.directory import Contact
from services.messaging.errors import UnsubscribeRejected
from services.messaging.policies.consent import (
    Unsubscribe,
    consent_refusal,
    unsubscribe_token,
    verify_unsubscribe,
)

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
SECRET = b"s3cret-for-tests"


def test_an_opt_out_refuses_its_category_only() -> None:
    contact = Contact("ws", "u1", consent={"tips": False})
    assert consent_refusal(contact, "tips", opt_in_categories=()) == (
        "consent: the contact opted out of tips"
    )
    assert consent_refusal(contact, "renewal", opt_in_categories=()) is None


def test_an_opt_in_category_needs_a_yes() -> None:
    silent = Contact("ws", "u1")
    agreed = Contact("ws", "u2", consent={"marketing": True})
    assert "needs an opt-in" in (
        consent_refusal(silent, "marketing", opt_in_categories={"marketing"}) or ""
    )
    assert consent_refusal(agreed, "marketing", opt_in_categories={"marketing"}) is None


def token(**changes: object) -> str:
    values: dict[str, object] = {
        "workspace_id": "ws",
        "contact_id": "u1",
        "category": "tips",
        "now": T0,
        "valid_for": timedelta(days=30),
        **changes,
    }
    return unsubscribe_token(SECRET, **values)  # type: ignore[arg-type]


def test_a_token_verifies_to_what_it_was_signed_for() -> None:
    assert verify_unsubscribe(SECRET, token(), now=T0 + timedelta(days=29)) == Unsubscribe(
        "ws", "u1", "tips", T0 + timedelta(days=30)
    )


def test_an_expired_token_is_rejected() -> None:
    with pytest.raises(UnsubscribeRejected, match="expired"):
        verify_unsubscribe(SECRET, token(), now=T0 + timedelta(days=30))


def test_a_changed_token_or_another_secret_is_rejected() -> None:
    good = token()
    payload, signature = good.split(".")
    other = token(category="renewal").split(".")[0]
    with pytest.raises(UnsubscribeRejected, match="signature"):
        verify_unsubscribe(SECRET, f"{other}.{signature}", now=T0)
    with pytest.raises(UnsubscribeRejected, match="signature"):
        verify_unsubscribe(b"another secret", good, now=T0)
    for malformed in ("", "abc", "a.b.c", f"{payload}.!!!", "x" * 3000, f"é{payload}.{signature}"):
        with pytest.raises(UnsubscribeRejected, match=r"malformed|signature"):
            verify_unsubscribe(SECRET, malformed, now=T0)
