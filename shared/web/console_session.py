"""The console's session: the admin token in an HttpOnly cookie, and its CSRF token.

Signing in puts the admin token itself in :data:`SESSION_COOKIE` (HttpOnly, SameSite=Strict,
Path=/), so every service checks it exactly like a bearer token, with no session store and
no secret of its own. Every request that changes something and is authenticated by that
cookie must also send :data:`CSRF_HEADER` equal to :func:`csrf_token` of the session
(double submit: the page reads it from the readable :data:`CSRF_COOKIE`, another site can
neither read it nor derive it without the admin token).
"""

from __future__ import annotations

import hashlib
import hmac

SESSION_COOKIE = "milepost_session"
CSRF_COOKIE = "milepost_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_SECONDS = 12 * 3600
"""How long the browser keeps the cookies (the token itself lasts until revoked)."""

_CSRF_CONTEXT = b"milepost console csrf v1"


def csrf_token(session: str) -> str:
    """The CSRF token that goes with the session cookie ``session``: an HMAC of a fixed
    context keyed by the admin token, so it proves knowledge of the token without
    revealing it."""
    return hmac.new(session.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def csrf_problem(method: str, session: str, header: str | None) -> str | None:
    """Why a cookie-authenticated request is refused for CSRF; None when it may pass (a
    safe method, or the header matches the session)."""
    if method.upper() in SAFE_METHODS:
        return None
    if not header:
        return f"send the {CSRF_HEADER} header with a change made from the console"
    if not hmac.compare_digest(header, csrf_token(session)):
        return f"the {CSRF_HEADER} header does not match the session; sign in again"
    return None
