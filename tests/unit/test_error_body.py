"""error_body: the one place an error answer's body is made."""

import tornado.web

from progressistad.web.base import ApiError, error_body, read_only, unauthorized


def test_an_api_error_says_its_message_and_details():
    assert error_body(404, ApiError(404, "no such task", task_id="t")) == {
        "error": "no such task", "task_id": "t"}
    assert error_body(401, unauthorized()) == {"error": "missing or invalid token"}
    assert error_body(403, read_only()) == {"error": "this token may only read"}


def test_a_client_error_of_tornado_says_its_message():
    error = tornado.web.HTTPError(400, "Missing argument %s", "name")
    assert error_body(400, error) == {"error": "Missing argument name"}
    assert error_body(400, tornado.web.HTTPError(400, "100% literal")) == {"error": "100% literal"}


def test_a_server_error_says_only_its_status():
    assert error_body(500, tornado.web.HTTPError(500, "disk at /var/lib/x")) == {
        "error": "internal server error"}
    assert error_body(500, RuntimeError("detail")) == {"error": "internal server error"}
    assert error_body(500) == {"error": "internal server error"}


def test_without_a_message_the_reason_or_the_status_phrase():
    assert error_body(405, tornado.web.HTTPError(405)) == {"error": "method not allowed"}
    assert error_body(404, tornado.web.HTTPError(404, reason="Gone Fishing")) == {
        "error": "gone fishing"}
    assert error_body(599) == {"error": "error"}
