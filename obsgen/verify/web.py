"""HTTP for verify (urllib only): bounded timeouts, a bearer token, extra headers, one-line errors.

Every failure to reach or use a server becomes a :class:`~obsgen.errors.UsageError`
(exit code 2) that says which URL, what happened and what to try; an endpoint a
server does not have (``NotFound``) is left to the caller to decide about.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from obsgen.errors import UsageError

TIMEOUT_S = 10.0
MAX_BYTES = 256 * 1024 * 1024  # a scrape or an API answer larger than this is not read


class NotFound(Exception):
    """The server has no such endpoint (404, 405, 501): Mimir has no /api/v1/targets."""


@dataclass(frozen=True)
class Client:
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = TIMEOUT_S

    def get(self, url: str, params: dict | None = None, *, accept: str | None = None) -> bytes:
        query = "?" + urllib.parse.urlencode(params, doseq=True) if params else ""
        headers = {**self.headers, **({"Accept": accept} if accept else {})}
        return self._send(urllib.request.Request(url + query, headers=headers))

    def post(self, url: str, params: dict) -> bytes:
        body = urllib.parse.urlencode(params, doseq=True).encode()
        headers = {**self.headers, "Content-Type": "application/x-www-form-urlencoded"}
        return self._send(urllib.request.Request(url, data=body, headers=headers, method="POST"))

    def json(self, url: str, params: dict | None = None, *, post: bool = False) -> object:
        raw = self.post(url, params or {}) if post else self.get(url, params)
        try:
            return json.loads(raw)
        except ValueError:
            raise UsageError(f"{url}: the answer is not JSON; is this a Prometheus query API? (for Mimir add its "
                             "prefix: https://mimir.example/prometheus)") from None

    def _send(self, request: urllib.request.Request) -> bytes:
        url = request.full_url.split("?", 1)[0]
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                data = response.read(MAX_BYTES + 1)
        except urllib.error.HTTPError as exc:
            if exc.code in (404, 405, 501):
                raise NotFound(url) from None
            raise UsageError(f"{url}: the server refused: HTTP {exc.code} {exc.reason}{_why(exc)}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise UsageError(f"{url}: no answer within {self.timeout:g}s") from None
            raise UsageError(f"{url}: cannot connect: {reason}") from None
        if len(data) > MAX_BYTES:
            raise UsageError(f"{url}: the answer is larger than {MAX_BYTES // 2**20} MiB")
        return data


def _why(exc: urllib.error.HTTPError) -> str:
    """What to do about a refusal, with the server's own error message when it sent one."""
    detail = ""
    try:
        body = json.loads(exc.read(64 * 1024) or b"{}")
        detail = f" ({body['error']})" if isinstance(body, dict) and body.get("error") else ""
    except (ValueError, OSError):
        pass
    if exc.code in (401, 403):
        return detail + "; give credentials with --bearer-token-file or --header 'Authorization: …'"
    return detail


def client(bearer_token_file: str | None, headers: tuple[str, ...], timeout: float = TIMEOUT_S) -> Client:
    """A client sending ``headers`` (``'K: V'``) and the token in ``bearer_token_file``, if given."""
    out: dict[str, str] = {"User-Agent": "obsgen-verify", "Accept": "application/json, text/plain;q=0.9, */*;q=0.5"}
    for header in headers:
        name, sep, value = header.partition(":")
        if not sep or not name.strip() or any(ch in name for ch in " \t\r\n"):
            raise UsageError(f"--header {header!r}: expected 'Name: value'")
        out[name.strip()] = value.strip()
    if bearer_token_file:
        try:
            token = Path(bearer_token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or exc
            raise UsageError(f"--bearer-token-file {bearer_token_file}: {why}") from None
        if not token or "\n" in token:
            raise UsageError(f"--bearer-token-file {bearer_token_file}: expected one token on one line")
        out["Authorization"] = f"Bearer {token}"
    return Client(out, timeout)
