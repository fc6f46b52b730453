"""Each sink against a real receiver on 127.0.0.1: what arrives (path, headers, body), and how
each answer is judged."""

from __future__ import annotations

import asyncio
import email
import email.policy
import time

import pytest

from progressistad.alerts import events, messages, routes
from progressistad.alerts.sinks import SendFailed, http, make_sink
from tests.alerts.helpers import DASHBOARD
from tests.alerts.test_events import T0, task

pytestmark = pytest.mark.gen_test(timeout=30)


def failure(desc="epoch loop"):
    served = task("error", created=T0, updated=T0 + 42, desc=desc, last_log="CUDA out of memory")
    return messages.burst("r", events.ERROR, "train", [served], T0, T0 + 50)


def one_route(config, text):
    parsed = config(text)
    return parsed.routes[0], parsed.smtp


async def send(config, out, text, message=None):
    route, smtp = one_route(config, text)
    await make_sink(route, smtp, out).send(message or failure(), T0 + 60)


async def test_webhook_posts_the_versioned_body(config, out, receiver):
    message = failure()
    await send(config, out, f"[hook]\nurl = {receiver.url('ok')}?k=v\ntoken = tk_abc\n", message)
    (got,) = receiver.received()
    assert (got.method, got.path, got.query) == ("POST", "/ok", {"k": "v"})
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["Authorization"] == "Bearer tk_abc"
    assert got.headers["Idempotency-Key"] == message.id
    assert got.headers["User-Agent"] == "progressistad/test"
    assert got.json() == message.body(DASHBOARD, T0 + 60)


async def test_ntfy_publish_api(config, out, receiver):
    url = receiver.url("ok", scheme="ntfy")
    await send(config, out, f"[phone]\nurl = {url}\ntoken = tk_n\npriority = high\n"
                            "tags = warning, skull\n")
    (got,) = receiver.received()
    assert got.path == "/ok"
    assert got.body.decode() == failure().text
    assert got.headers["Title"] == "train:0 failed"
    assert got.headers["Priority"] == "high" and got.headers["Tags"] == "warning,skull"
    assert got.headers["Click"] == DASHBOARD
    assert got.headers["Authorization"] == "Bearer tk_n"
    assert got.headers["Content-Type"] == "text/plain; charset=utf-8"


async def test_ntfy_encodes_a_title_outside_ascii_and_sends_userinfo_as_basic(
        config, out, receiver):
    served = task("error", task_id="entraînement:0", created=T0, updated=T0 + 1)
    message = messages.burst("r", events.ERROR, "entraînement", [served], T0, T0)
    url = receiver.url("ok", scheme="ntfy").replace("//", "//alice:pw@")
    await send(config, out, f"[phone]\nurl = {url}\n", message)
    (got,) = receiver.received()
    title = str(email.header.make_header(email.header.decode_header(got.headers["Title"])))
    assert title == "entraînement:0 failed" and got.headers["Title"].isascii()
    assert got.headers["Authorization"] == "Basic YWxpY2U6cHc="


async def test_slack_format(config, out, receiver):
    message = failure(desc="<!channel> & co")
    await send(config, out, f"[s]\nurl = slack+{receiver.url('ok')}\n", message)
    (got,) = receiver.received()
    text = got.json()["text"]
    assert list(got.json()) == ["text"]
    assert text.startswith("*train:0 failed*\ntrain:0 failed after 42 s")
    assert "&lt;!channel&gt; &amp; co" in text and "<!channel>" not in text
    assert text.endswith(f"\n<{DASHBOARD}|Open the dashboard>")


async def test_discord_format(config, out, receiver):
    message = failure(desc="@everyone " + "x" * 3000)
    await send(config, out, f"[d]\nurl = discord+{receiver.url('ok')}\n", message)
    (got,) = receiver.received()
    body = got.json()
    assert body["allowed_mentions"] == {"parse": []}
    assert body["content"].startswith("**train:0 failed**\ntrain:0 failed after 42 s")
    assert len(body["content"]) == 2000 and body["content"].endswith("\n" + DASHBOARD)


@pytest.mark.parametrize("path, retry, reason, retry_after", [
    ("ok?status=204", None, None, None),
    ("ok?status=404", False, "HTTP 404", None),
    ("ok?status=401", False, "HTTP 401", None),
    ("ok?status=500", True, "HTTP 500", None),
    ("ok?status=503&retry_after=7", True, "HTTP 503", 7.0),
    ("ok?status=429&retry_after=30", True, "HTTP 429", 30.0),
    ("redirect", False, "HTTP 302: redirect not followed", None),
    ("reset", True, None, None),
])
async def test_answers_are_judged(config, out, receiver, path, retry, reason, retry_after):
    text = f"[hook]\nurl = {receiver.url(path)}\n"
    if retry is None:
        await send(config, out, text)
        return
    with pytest.raises(SendFailed) as caught:
        await send(config, out, text)
    assert caught.value.retry is retry
    if reason:
        assert caught.value.reason == reason
    assert caught.value.retry_after == retry_after
    assert "127.0.0.1" not in caught.value.reason


async def test_a_refused_connection_is_retried_and_names_no_url(config, out, receiver):
    receiver.stop()
    with pytest.raises(SendFailed) as caught:
        await send(config, out, f"[hook]\nurl = {receiver.url('ok')}\n")
    assert caught.value.retry and caught.value.reason == "Connection refused"


async def test_a_name_that_does_not_resolve_is_retried_and_names_no_host(config, out):
    # .invalid never resolves (RFC 6761); the lookup runs off the event loop.
    ticks = 0

    async def tick():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.ensure_future(tick())
    started = time.monotonic()
    try:
        with pytest.raises(SendFailed) as caught:
            await send(config, out, "[hook]\nurl = http://receiver.invalid:9/hook?token=s3cret\n")
    finally:
        ticking.cancel()
    took = time.monotonic() - started
    assert caught.value.retry
    assert "receiver.invalid" not in caught.value.reason and "s3cret" not in caught.value.reason
    assert took < out.timeout + 1.5
    assert ticks >= int(took / 0.04)  # the loop kept turning while the name was looked up


async def test_a_receiver_that_hangs_costs_the_timeout_and_no_more(config, out, receiver):
    started = time.monotonic()
    with pytest.raises(SendFailed) as caught:
        await send(config, out, f"[hook]\nurl = {receiver.url('hang')}\n")
    assert caught.value.retry and caught.value.reason == "timeout"
    assert out.timeout - 0.5 < time.monotonic() - started < out.timeout + 1.5


@pytest.mark.parametrize("how", ["length", "chunked", "close"])
async def test_a_100_mb_answer_is_judged_by_its_status_and_read_no_further(
        config, out, receiver, how):
    started = time.monotonic()
    await send(config, out, f"[hook]\nurl = {receiver.url('big')}?how={how}\n")
    assert time.monotonic() - started < 2
    await asyncio.sleep(0.3)
    assert receiver.big is not None and not receiver.big.finished
    assert receiver.big.bytes < 20 * 1024 * 1024
    with pytest.raises(SendFailed) as caught:
        await send(config, out, f"[hook]\nurl = {receiver.url('big')}?how={how}&status=502\n")
    assert caught.value.reason == "HTTP 502" and caught.value.retry


def test_retry_after_as_a_date():
    assert http.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == 10.0
    assert http.parse_retry_after("soon", 0) is None
    assert http.parse_retry_after(None, 0) is None


async def test_mail_over_smtp(config, out, smtp_server):
    message = failure()
    await send(config, out, f"[m]\nurl = mailto:ops@example.com,dev@example.com\n"
                            f"[smtp]\nhost = 127.0.0.1\nport = {smtp_server.port}\n"
                            "from = progress@lan\n", message)
    (mail,) = smtp_server.mails
    assert mail.sender == "progress@lan"
    assert mail.recipients == ["ops@example.com", "dev@example.com"]
    parsed = email.message_from_bytes(mail.data, policy=email.policy.default)
    assert parsed["Subject"] == "train:0 failed"
    assert parsed["Message-ID"] == f"<{message.id}@progressistad.box>"
    assert parsed["X-Progressista-Event"] == "error"
    assert parsed.get_content().replace("\r\n", "\n") == f"{message.text}\n\n{DASHBOARD}\n"


async def test_mail_refused_for_now_is_retried_and_for_good_is_not(config, out, smtp_server):
    text = (f"[m]\nurl = mailto:ops@example.com\n[smtp]\nhost = 127.0.0.1\n"
            f"port = {smtp_server.port}\n")
    smtp_server.reply = "451 try again later"
    with pytest.raises(SendFailed) as caught:
        await send(config, out, text)
    assert caught.value.retry and caught.value.reason == "SMTP 451"
    smtp_server.reply = "554 no thanks"
    with pytest.raises(SendFailed) as caught:
        await send(config, out, text)
    assert not caught.value.retry and caught.value.reason == "SMTP 554"


async def test_mail_that_requires_starttls_from_a_server_without_it(config, out, smtp_server):
    with pytest.raises(SendFailed) as caught:
        await send(config, out, f"[m]\nurl = mailto:ops@example.com\n[smtp]\nhost = 127.0.0.1\n"
                                f"port = {smtp_server.port}\nstarttls = yes\n")
    assert not caught.value.retry
    assert caught.value.reason == "the mail server does not offer STARTTLS"
    assert smtp_server.mails == []


async def test_mail_to_a_server_that_is_down(config, out):
    from tests.support import free_port

    with pytest.raises(SendFailed) as caught:
        await send(config, out, f"[m]\nurl = mailto:ops@example.com\n[smtp]\nhost = 127.0.0.1\n"
                                f"port = {free_port()}\n")
    assert caught.value.retry and caught.value.reason == "Connection refused"


async def test_apprise_json_scheme(config, out, receiver):
    pytest.importorskip("apprise")
    message = failure()
    route, smtp = one_route(config, f"[j]\nurl = json://127.0.0.1:{receiver.port}/ok\n")
    assert route.sink == routes.APPRISE
    await make_sink(route, smtp, out).send(message, T0)
    (got,) = receiver.received()
    body = got.json()
    assert body["title"] == message.title
    assert body["message"] == f"{message.text}\n{DASHBOARD}"


async def test_apprise_failure_is_retried(config, out, receiver):
    pytest.importorskip("apprise")
    route, smtp = one_route(config, f"[j]\nurl = json://127.0.0.1:{receiver.port}/fail\n")
    with pytest.raises(SendFailed) as caught:
        await make_sink(route, smtp, out).send(failure(), T0)
    assert caught.value.retry
