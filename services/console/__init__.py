"""The operator console: static pages at ``/`` that read and write only through the
services' admin APIs, and its sign-in (the admin token in a session cookie)."""
