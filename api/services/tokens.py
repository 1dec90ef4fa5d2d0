"""Bearer tokens: the admin's, each active site's, one-time enrolment tokens.

Tokens are random (``secrets``) and stored only as sha256 hashes; comparisons are constant-time.
Site tokens are cached by hash (one broker process owns the database): all of them at start-up
(``warm``), and each new one as its site registers (``remember``); every operation that ends a
token's life (disable, deregister, rotate, re-enrol) calls ``forget`` for its site.

Revocation sticks: ``forget`` bumps an epoch, and a lookup caches what it read only if the epoch
is still the one it began in, so a lookup in flight during a rotation cannot put the old token
back. And every entry lives at most ``token_cache_ttl_s`` (a setting, 15 s by default): anything
a revocation still missed dies within it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from api.db import read_meta, write_meta
from api.models import SiteRow
from api.services.context import Context
from api.states import SiteState

ADMIN_HASH_KEY = "admin_token_sha256"


class NoAdminTokenError(RuntimeError):
    """No admin token configured or stored, and generating one was not allowed."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


TOKEN_PREFIX = "cf_"  # a token never starts with "-", which a command line reads as an option


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)  # 32 bytes of entropy


@dataclass(frozen=True)
class Principal:
    """Who is calling: the admin, or one site."""

    admin: bool = False
    site_id: str | None = None


class TokenService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._admin_hash: str | None = None
        # token hash -> (site id, monotonic time the entry expires)
        self._site_by_hash: dict[str, tuple[str, float]] = {}
        self._epoch = 0  # bumped by every ``forget``
        self._lock = threading.Lock()
        self.monotonic: Callable[[], float] = time.monotonic  # tests may turn it

    def settle_admin_token(self, may_generate: bool = True) -> str | None:
        """Store the configured admin token's hash, or generate one on the first start.

        Returns a newly generated token (for the caller to show once), else None.
        """
        generated = None
        with self.ctx.db.write() as s:
            given = self.ctx.settings.admin_token
            if given is not None:
                write_meta(s, ADMIN_HASH_KEY, token_hash(given.get_secret_value()))
            elif read_meta(s, ADMIN_HASH_KEY) is None:
                if not may_generate:
                    raise NoAdminTokenError("no admin token")
                generated = new_token()
                write_meta(s, ADMIN_HASH_KEY, token_hash(generated))
            self._admin_hash = read_meta(s, ADMIN_HASH_KEY)
        return generated

    def is_admin(self, token: str) -> bool:
        return self._admin_hash is not None and hmac.compare_digest(
            token_hash(token), self._admin_hash)

    def _expires(self) -> float:
        return self.monotonic() + self.ctx.settings.token_cache_ttl_s

    def site_for_token(self, token: str) -> str | None:
        """The active site a token belongs to, or None."""
        digest = token_hash(token)
        with self._lock:
            cached = self._site_by_hash.get(digest)
            if cached is not None and cached[1] > self.monotonic():
                return cached[0]
            epoch = self._epoch
        with self.ctx.db.read() as s:
            row = s.scalars(select(SiteRow).where(SiteRow.token_sha256 == digest)).first()
            if row is None or row.state != SiteState.ACTIVE or row.token_sha256 is None:
                return None
            # the lookup is by hash; compare again in constant time so equality is the rule
            if not hmac.compare_digest(row.token_sha256, digest):
                return None
            site_id = row.id
        with self._lock:
            if epoch == self._epoch:  # else a token died meanwhile: maybe this one
                self._site_by_hash[digest] = (site_id, self._expires())
        return site_id

    def is_enrolment_token(self, token: str) -> bool:
        """Whether ``token`` is an unused one-time enrolment token (one indexed read; only
        registration takes one)."""
        digest = token_hash(token)
        with self.ctx.db.read() as s:
            stored = s.scalar(select(SiteRow.enrol_token_sha256).where(
                SiteRow.enrol_token_sha256 == digest))
        return stored is not None and hmac.compare_digest(stored, digest)

    def warm(self) -> int:
        """Cache every active site's token hash now, in one read: after a restart, a thousand
        agents' first requests would otherwise each look theirs up on the event loop at once.
        Returns how many were cached."""
        with self.ctx.db.read() as s:
            rows = s.execute(select(SiteRow.token_sha256, SiteRow.id).where(
                SiteRow.state == SiteState.ACTIVE, SiteRow.token_sha256.is_not(None))).all()
        with self._lock:
            expires = self._expires()
            self._site_by_hash.update({digest: (site, expires) for digest, site in rows
                                       if digest})
        return len(rows)

    def remember(self, site_id: str, token: str) -> None:
        """Cache a site's new token. Call it inside the transaction that stores it: a disable
        or deregistration of the site commits after that transaction and then ``forget``s it,
        so the cache never outlives the token. Sites register in bursts (a fleet enrolled at
        once), and each first request would otherwise look its token up on the event loop."""
        with self._lock:
            self._site_by_hash[token_hash(token)] = (site_id, self._expires())

    def forget(self, site_id: str) -> None:
        """Drop a site's cached tokens (one died or changed hands). Only that site's: clearing
        them all made every agent look its token up again on the event loop."""
        with self._lock:
            self._epoch += 1
            for digest in [d for d, (site, _) in self._site_by_hash.items() if site == site_id]:
                del self._site_by_hash[digest]

    def principal(self, token: str) -> Principal | None:
        if self.is_admin(token):
            return Principal(admin=True)
        site = self.site_for_token(token)
        return Principal(site_id=site) if site is not None else None
