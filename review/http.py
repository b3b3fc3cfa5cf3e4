"""Polite, fault-tolerant HTTP for the services a review calls (E-utilities, open-access
services): a timeout on every request and a deadline on every reply, a rate limit, and retries
with exponential backoff on 429 (honouring Retry-After), 5xx, time-outs, dropped connections
and replies the caller marks as worth asking again; then one clear error.

urllib rather than a third-party client: the standard library does all this needs, and its
redirect handler already stops a redirect loop.
"""

from __future__ import annotations

import http.client
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import TypeVar

from review import __version__
from review.errors import ReviewError

T = TypeVar("T")


class RetryableReply(Exception):
    """A reply that may succeed when asked again (truncated, malformed or a backend error)."""


class RequestRefused(ReviewError):
    """A reply that asking again will not change (404, 403, a redirect loop, too large)."""


class PoliteClient:
    """Rate-limited, retrying GET and POST requests to one service; counts what it sends."""

    def __init__(self, service: str, *, requests_per_second: float, timeout: float,
                 max_attempts: int, backoff: float, max_backoff: float,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.service = service
        self.requests_per_second = requests_per_second
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep
        self.clock = clock
        self.requests = 0
        self.retries = 0
        self._next_slot = 0.0

    def _wait_for_slot(self) -> None:
        now = self.clock()
        if now < self._next_slot:
            self.sleep(self._next_slot - now)
            now = self._next_slot
        self._next_slot = now + 1.0 / self.requests_per_second

    def _fetch(self, url: str, data: bytes | None, max_bytes: int | None) -> bytes:
        request = urllib.request.Request(url, data=data,
                                         headers={"User-Agent": f"casereview/{__version__}"})
        # The socket timeout bounds each read; the deadline bounds the whole reply, which a
        # server dripping a few bytes at a time would otherwise stretch without end.
        deadline = time.monotonic() + self.timeout
        chunks = []
        received = 0
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            declared = response.headers.get("Content-Length", "")
            if max_bytes is not None and declared.isdigit() and int(declared) > max_bytes:
                raise RequestRefused(f"{url}: {int(declared):,} bytes, over the limit of "
                                     f"{max_bytes:,}")
            # read1 returns what has arrived: read(n) would wait for all n bytes, so a reply
            # dripping faster than the socket timeout would pass the deadline unchecked.
            while chunk := response.read1(65536):
                chunks.append(chunk)
                received += len(chunk)
                if max_bytes is not None and received > max_bytes:
                    raise RequestRefused(f"{url}: more than the limit of {max_bytes:,} bytes")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the reply took longer than {self.timeout:g} s")
            if declared.isdigit() and received < int(declared):
                raise http.client.IncompleteRead(b"".join(chunks), int(declared) - received)
        return b"".join(chunks)

    def call(self, url: str, read: Callable[[bytes], T], *, data: bytes | None = None,
             what: str = "", max_bytes: int | None = None) -> T:
        """One request, retried until `read` accepts the reply; `what` names it in errors."""
        what = what or f"{self.service} {urllib.parse.urlsplit(url).path}"
        last_problem = ""
        for attempt in range(self.max_attempts):
            self._wait_for_slot()
            self.requests += 1
            delay = min(self.backoff * 2**attempt, self.max_backoff)
            try:
                return read(self._fetch(url, data, max_bytes))
            except urllib.error.HTTPError as error:
                if 300 <= error.code < 400:
                    raise RequestRefused(f"{what}: redirected in a loop (HTTP {error.code})"
                                         ) from None
                if error.code != 429 and not 500 <= error.code < 600:
                    raise RequestRefused(f"{what}: HTTP {error.code} {error.reason}") from None
                last_problem = f"HTTP {error.code}"
                retry_after = (error.headers or {}).get("Retry-After", "")
                if retry_after.strip().isdigit():
                    asked = float(retry_after)
                    if asked > self.max_backoff:
                        print(f"review: {self.service} asked to wait {asked:g} s; waiting "
                              f"{self.max_backoff:g} s (the longest this client waits) "
                              "before trying again", file=sys.stderr)
                    delay = max(delay, min(asked, self.max_backoff))
            except (urllib.error.URLError, TimeoutError, ConnectionError,
                    http.client.HTTPException) as error:
                reason = getattr(error, "reason", error)
                if isinstance(error, http.client.IncompleteRead):
                    reason = f"the reply stopped {error.expected:,} bytes short"
                last_problem = (reason if isinstance(reason, str)
                                else f"{type(reason).__name__}: {reason}")
            except RetryableReply as problem:
                last_problem = str(problem)
            if attempt + 1 < self.max_attempts:
                self.retries += 1
                self.sleep(delay)
        raise ReviewError(f"{what}: gave up after {self.max_attempts} "
                          f"attempt{'s' if self.max_attempts > 1 else ''} ({last_problem})")
