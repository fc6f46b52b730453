"""Tokens: what each grants, header parsing, and redaction for logs."""

import pytest

from progressistad.web.auth import Access, TokenSet, bearer_token, redact_uri


def test_no_tokens_means_open():
    assert TokenSet().access(None) == Access.WRITE
    assert not TokenSet().enabled


@pytest.mark.parametrize(
    "token, expected",
    [("rw", Access.WRITE), ("ro", Access.READ), ("nope", Access.NONE), ("", Access.NONE),
     (None, Access.NONE), ("rw ", Access.NONE), ("RW", Access.NONE)],
)
def test_access_by_token(token, expected):
    assert TokenSet(write=["rw"], read=["ro"]).access(token) == expected


def test_token_in_both_lists_grants_write():
    assert TokenSet(write=["t"], read=["t"]).access("t") == Access.WRITE


def test_repr_hides_tokens():
    assert "secret" not in repr(TokenSet(write=["secret"], read=["secret2"]))


@pytest.mark.parametrize(
    "header, token",
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer", None),
     ("", None), (None, None)],
)
def test_bearer_token(header, token):
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("/ws?token=abc", "/ws?token=REDACTED"),
        ("/tasks?status=close&token=abc&x=1", "/tasks?status=close&token=REDACTED&x=1"),
        ("/static/index.html?TOKEN=abc", "/static/index.html?TOKEN=REDACTED"),
        ("/tasks?mytoken=abc", "/tasks?mytoken=abc"),
    ],
)
def test_redact_uri(uri, expected):
    assert redact_uri(uri) == expected
