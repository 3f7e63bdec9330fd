"""The console session's CSRF token: derived from the admin token, required on changes."""

from __future__ import annotations

import pytest

from shared.web.console_session import CSRF_HEADER, csrf_problem, csrf_token

TOKEN = "mpa_abcdefghijkl_secret-part-of-the-token"


def test_the_csrf_token_is_stable_per_session_and_reveals_nothing_of_it() -> None:
    assert csrf_token(TOKEN) == csrf_token(TOKEN)
    assert csrf_token(TOKEN) != csrf_token(TOKEN + "x")
    assert len(csrf_token(TOKEN)) == 64
    assert "secret" not in csrf_token(TOKEN)


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "get"])
def test_reading_needs_no_csrf_header(method: str) -> None:
    assert csrf_problem(method, TOKEN, None) is None


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_change_needs_the_header_of_its_own_session(method: str) -> None:
    assert csrf_problem(method, TOKEN, csrf_token(TOKEN)) is None
    missing = csrf_problem(method, TOKEN, None)
    assert missing is not None
    assert CSRF_HEADER in missing
    for wrong in ("", csrf_token("another-token"), csrf_token(TOKEN)[:-1]):
        assert csrf_problem(method, TOKEN, wrong) is not None
