"""The dashboard: its files, the contract module its scripts import, and GET / leading to it."""

from __future__ import annotations

import os
from typing import Any, Optional

import tornado.web

from progressistad import contract
from progressistad.web.auth import Access
from progressistad.web.base import ApiError, ApiHandler, Answers, RequestAuth
from progressistad.web.context import AppContext

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
"""Nothing inline and nothing from elsewhere: the page's text is task data, never markup."""


class DashboardHandler(Answers, RequestAuth, tornado.web.StaticFileHandler):
    """GET /static/...: the dashboard files, with a strict Content-Security-Policy.

    `index.html?token=T` with a valid token sets an HttpOnly cookie, so the page
    can drop the token from its address and from every later URL.
    """

    default_headers = {"Content-Security-Policy": CSP}

    def initialize(self, ctx: AppContext, path: str, default_filename: Optional[str] = None) -> None:
        self.ctx = ctx
        super().initialize(path=path, default_filename=default_filename)

    def parse_url_path(self, url_path: str) -> str:
        if any(ord(ch) < 0x20 or ch in "\\\x7f" for ch in url_path):
            raise ApiError(404, "no such file")
        return super().parse_url_path(url_path)

    def validate_absolute_path(self, root: str, absolute_path: str) -> Optional[str]:
        try:
            return super().validate_absolute_path(root, absolute_path)
        except tornado.web.HTTPError as error:
            if error.status_code == 404:
                raise ApiError(404, "no such file") from None
            raise

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "no-cache")
        if os.path.basename(path) == "index.html":
            self._remember_token()

    def _remember_token(self) -> None:
        query = self.request.query_arguments.get(contract.TOKEN_QUERY_PARAM)
        if not query:
            return
        token = query[-1].decode("utf-8", "surrogateescape")
        if self.ctx.tokens.enabled and self.ctx.tokens.access(token) > Access.NONE:
            self.set_cookie(
                contract.TOKEN_COOKIE, token, path=self.ctx.settings.base_path or "/",
                httponly=True, samesite="Strict", secure=self.request.protocol == "https",
            )


class ContractHandler(ApiHandler):
    """GET /static/contract.js (no token): the wire contract as a JavaScript module."""

    access = {"GET": Access.NONE, "HEAD": Access.NONE}
    default_headers = {"Content-Security-Policy": CSP, "Cache-Control": "no-cache"}
    CONTENT_TYPE = "text/javascript; charset=utf-8"

    def initialize(self, ctx: AppContext, source: str) -> None:
        super().initialize(ctx)
        self.source = source

    def get(self) -> None:
        self.set_header("Content-Type", self.CONTENT_TYPE)
        self.finish(self.source)

    head = get


class RootHandler(ApiHandler):
    """GET /: redirect to the dashboard, keeping the query string (so `/?token=T` works)."""

    access = {"GET": Access.NONE}

    def get(self) -> None:
        target = self.ctx.settings.base_path + "/static/index.html"
        if self.request.query:
            target += "?" + self.request.query
        self.redirect(target)
