"""`mailto:` routes: one email per message over SMTP (the standard library, on a worker thread).

STARTTLS is used when the server offers it (`starttls = auto`), required with
`yes`, never with `no`. The Message-ID derives from the message id, so a
repeated attempt is recognisably the same mail.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import List

from progressistad.alerts.messages import Message
from progressistad.alerts.routes import Route, SmtpSettings
from progressistad.alerts.sinks import Outbound, SendFailed, off_loop


class MailSink:
    def __init__(self, route: Route, smtp: SmtpSettings, out: Outbound) -> None:
        address = route.url.split(":", 1)[1].split("?", 1)[0]
        self._to: List[str] = [a.strip() for a in address.split(",") if a.strip()]
        self._smtp = smtp
        self._out = out
        self._sender = smtp.sender or f"progressistad@{out.hostname}"

    async def send(self, message: Message, sent_at: float) -> None:
        mail = self.compose(message, sent_at)
        await off_loop(self._out, lambda: self._deliver(mail))

    def compose(self, message: Message, sent_at: float) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self._sender
        mail["To"] = ", ".join(self._to)
        mail["Subject"] = " ".join(message.title.split())
        mail["Date"] = formatdate(sent_at)
        mail["Message-ID"] = f"<{message.id}@progressistad.{self._out.hostname}>"
        mail["X-Progressista-Event"] = message.event
        link = f"\n\n{self._out.dashboard_url}\n" if self._out.dashboard_url else "\n"
        mail.set_content(message.text + link)
        return mail

    def _deliver(self, mail: EmailMessage) -> None:
        """On a worker thread: connect, STARTTLS as configured, log in, send."""
        smtp = self._smtp
        try:
            with smtplib.SMTP(smtp.host, smtp.port, timeout=self._out.timeout) as client:
                client.ehlo()
                if smtp.starttls != "no" and client.has_extn("starttls"):
                    client.starttls(context=ssl.create_default_context())
                    client.ehlo()
                elif smtp.starttls == "yes":
                    raise SendFailed("the mail server does not offer STARTTLS", retry=False)
                if smtp.username:
                    client.login(smtp.username, smtp.password or "")
                client.send_message(mail)
        except smtplib.SMTPResponseException as exc:
            raise SendFailed(f"SMTP {exc.smtp_code}", retry=400 <= exc.smtp_code < 500) from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            raise SendFailed("recipients refused: SMTP " + ", ".join(map(str, codes)),
                             retry=all(400 <= code < 500 for code in codes)) from None
        except (socket.timeout, TimeoutError):
            raise SendFailed("timeout", retry=True) from None
        except (OSError, smtplib.SMTPException) as exc:
            text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise SendFailed(text or type(exc).__name__, retry=True) from None
