"""A real SMTP submission server for the mail tests (aiosmtpd), on 127.0.0.1.

It asks what a relay asks of a client: STARTTLS before anything else (RFC 3207), then AUTH
(PLAIN or LOGIN, RFC 4954) before MAIL. Every message it takes is stored as an .eml file in the
mail folder, with a Received header on top as an MTA adds one (RFC 5321 section 4.4), whose
"with" keyword tells how it came (RFC 3848: ESMTPSA = over TLS and authenticated).

The test control: a file named after a recipient address in the refuse folder makes the server
answer 554 at the end of DATA for every message to that recipient, as a relay refusing mail by
policy would; removing the file lets the next attempt through. Per recipient, so tests that run
at the same time do not disturb each other.

Started by tests/smtp/start-smtp.sh, which passes everything through the environment:
SMTP_PORT, SMTP_USER, SMTP_PASSWORD, SMTP_CERT, SMTP_KEY, SMTP_MAILDIR, SMTP_REFUSE_DIR.
"""

import email.utils
import hmac
import os
import signal
import ssl
import threading
import time
import uuid

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def protocol(session):
    """RFC 3848's "with" keyword for how the message came in."""
    tls = session.ssl is not None
    auth = bool(session.authenticated)
    return "ESMTP" + ("S" if tls else "") + ("A" if auth else "")


class Authenticator:
    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = hmac.compare_digest(auth_data.login, self.user) and hmac.compare_digest(
            auth_data.password, self.password
        )
        return AuthResult(success=ok, handled=False)


class Maildir:
    def __init__(self, maildir, refuse_dir):
        self.maildir = maildir
        self.refuse_dir = refuse_dir

    def refused(self, address):
        name = address.strip().lower()
        if not name or "/" in name or name.startswith("."):
            return False
        return os.path.exists(os.path.join(self.refuse_dir, name))

    async def handle_DATA(self, server, session, envelope):
        refused = [r for r in envelope.rcpt_tos if self.refused(r)]
        if refused:
            print(f"refused mail to {', '.join(refused)} (test control)", flush=True)
            return f"554 5.7.1 Message refused by policy (test control: {refused[0]})"
        queue_id = uuid.uuid4().hex
        received = (
            f"Received: from {session.host_name} ([{session.peer[0]}])\r\n"
            f"\tby {server.hostname} with {protocol(session)} id {queue_id}\r\n"
            f"\tfor <{envelope.rcpt_tos[0]}>; {email.utils.formatdate(usegmt=True)}\r\n"
        ).encode()
        name = f"{time.time_ns()}-{queue_id}.eml"
        tmp = os.path.join(self.maildir, f".{name}.tmp")
        # Written under a dot name and renamed, so a reader never sees half a message.
        with open(tmp, "wb") as f:
            f.write(received + envelope.original_content)
        os.replace(tmp, os.path.join(self.maildir, name))
        print(
            f"accepted mail from {envelope.mail_from} to {', '.join(envelope.rcpt_tos)} "
            f"with {protocol(session)}: {name}",
            flush=True,
        )
        return f"250 2.0.0 OK queued as {queue_id}"


def main():
    env = os.environ
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(env["SMTP_CERT"], env["SMTP_KEY"])
    controller = Controller(
        Maildir(env["SMTP_MAILDIR"], env["SMTP_REFUSE_DIR"]),
        hostname="127.0.0.1",
        port=int(env["SMTP_PORT"]),
        server_hostname="smtp.test.invalid",
        tls_context=tls,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=Authenticator(env["SMTP_USER"], env["SMTP_PASSWORD"]),
    )
    controller.start()
    print(f"listening on 127.0.0.1:{controller.port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
