"""Database URLs (leaderboard and Optuna storage): parsing with one-line errors, and redaction for display.

Every message that shows a URL shows :func:`redact_url` of it, and every message
that may quote one (a driver's error) goes through :func:`redact_text`: whatever
the URL's shape (no scheme, a broken port or IPv6 host, a percent-encoded password,
a password in the query string), its password is never shown.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from bench.errors import UsageError

HIDDEN = "***"
# Query parameters whose value is a credential (libpq's ``password``, ``sslpassword``, tokens).
SECRET_QUERY_KEYS = frozenset(
    {"password", "passwd", "pwd", "pass", "secret", "token", "sslpassword", "access_token", "api_key", "apikey"}
)
_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*://", re.IGNORECASE)
# ``user:password@`` after a scheme, or at the start of a word (a URL written without its scheme).
_CREDENTIALS = re.compile(
    r"(?P<lead>[a-z][a-z0-9+.\-]*://|(?<![\w:/@.%+\-]))(?P<user>[\w.%+\-]*):(?P<secret>[^\s/@'\"]+)@", re.IGNORECASE
)
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&;](?:" + "|".join(sorted(SECRET_QUERY_KEYS)) + r"))=(?P<value>[^&;#\s'\"]*)", re.IGNORECASE
)
DATABASE_URL_EXAMPLES = "e.g. sqlite:///results/leaderboard.db or postgresql://user@host/db"


def redact_url(url: str) -> str:
    """``url`` with its password and secret query values replaced by ``***``, safe to print.

    A URL that does not parse is redacted as text: everything between the scheme
    (or the start) and the last ``@`` before the path loses its password.
    """
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018  (a non-numeric port raises here on some SQLAlchemy versions)
    except (ArgumentError, ValueError, TypeError):
        return _redact_unparsed(url)
    if parsed.host is not None and "@" in parsed.host:
        return _redact_unparsed(url)  # an unescaped '@' in the password: the parser split it in the wrong place
    if any(key.lower() in SECRET_QUERY_KEYS for key in parsed.query):
        parsed = parsed.set(
            query={key: HIDDEN if key.lower() in SECRET_QUERY_KEYS else value for key, value in parsed.query.items()}
        )
    return parsed.render_as_string(hide_password=True).replace("%2A%2A%2A", HIDDEN)


def redact_text(text: str, secrets: frozenset[str] | set[str] = frozenset()) -> str:
    """``text`` (a message, a driver's error) with URL passwords, secret query values and ``secrets`` hidden."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, HIDDEN)
    text = _CREDENTIALS.sub(lambda match: f"{match['lead']}{match['user']}:{HIDDEN}@", text)
    return _SECRET_QUERY.sub(lambda match: f"{match['key']}={HIDDEN}", text)


def secrets_of(url: str) -> frozenset[str]:
    """The password of ``url`` as written and percent-decoded, and its secret query values (may be empty)."""
    found: set[str] = set()
    before_query, _, query = url.partition("?")
    userinfo = _userinfo(before_query)
    if userinfo is not None and ":" in userinfo:
        found.add(userinfo.split(":", 1)[1])
    for match in _SECRET_QUERY.finditer("?" + query if query else ""):
        found.add(match["value"])
    try:
        password = make_url(url).password
    except (ArgumentError, ValueError, TypeError):
        password = None
    if password:
        found.add(str(password))
    found |= {unquote(value) for value in found}
    return frozenset(value for value in found if value)


def parse_database_url(url: str, option: str = "--storage") -> URL:
    """The SQLAlchemy URL of ``url``; :class:`UsageError` naming ``option`` (password hidden) otherwise."""
    shown = redact_url(url)
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018
    except (ArgumentError, ValueError, TypeError) as error:
        problem = _problem(url, error)
        raise UsageError(f"invalid {option} URL {shown!r} ({problem}); {DATABASE_URL_EXAMPLES}") from None
    if parsed.host is not None and "@" in parsed.host:
        raise UsageError(f"invalid {option} URL {shown!r}: write an '@' inside the password as %40")
    return parsed


def _problem(url: str, error: Exception) -> str:
    if not _SCHEME.match(url):
        return "no scheme such as sqlite:/// or postgresql://"
    if "[" in url.partition("?")[0] and "]" not in url.partition("?")[0]:
        return "unclosed '[' in an IPv6 host"
    if isinstance(error, ValueError):
        return "the port must be a number"
    return "cannot be parsed"


def _userinfo(before_query: str) -> str | None:
    rest = _SCHEME.sub("", before_query, count=1)
    if "@" not in rest:
        return None
    return rest.rpartition("@")[0]


def _redact_unparsed(url: str) -> str:
    before_query, mark, query = url.partition("?")
    scheme = match.group(0) if (match := _SCHEME.match(before_query)) else ""
    rest = before_query[len(scheme) :]
    if "@" in rest:
        userinfo, _, host = rest.rpartition("@")
        user = userinfo.split(":", 1)[0] if ":" in userinfo else userinfo
        rest = f"{user}:{HIDDEN}@{host}" if ":" in userinfo else f"{user}@{host}"
    return redact_text(scheme + rest + mark + query)
