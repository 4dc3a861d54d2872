"""Real receivers on loopback for the alert channels: an HTTP server and an SMTP server.

Plain fixtures with no module state, so they can move to a shared conftest:

- ``http_receiver``: a threaded HTTP server on 127.0.0.1 that records every
  request and answers from a script (``receiver.answer(Reply(503), ...)``);
  200 when the script is empty. ``Reply(hang=True)`` never answers.
- ``tls_files`` / ``https_receiver``: a private CA, a certificate for
  ``localhost``, and the same receiver speaking HTTPS.
- ``smtp_server`` / ``start_smtp``: an ``aiosmtpd`` server on 127.0.0.1
  (plain, STARTTLS, implicit TLS, with or without AUTH) that records
  messages and can be told to answer 451 or 550.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

# --------------------------------------------------------------------------- HTTP


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: Mapping[str, str] = field(default_factory=dict)
    hang: bool = False  # read the request, then never answer


class Receiver:
    """A real HTTP(S) server in a thread, answering from a script."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.requests: list[RecordedRequest] = []
        self.handler_errors: list[BaseException] = []
        self._script: list[Reply] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = _make_server(self)
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if ssl_context is not None else "http"
        self.port: int = self._server.server_address[1]
        # A short poll keeps shutdown (every test's teardown) fast.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/hook"

    def answer(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._script.pop(0) if self._script else Reply()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _make_server(receiver: Receiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            receiver._record(
                RecordedRequest(
                    method="POST",
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
            )
            reply = receiver._next_reply()
            if reply.hang:
                receiver._release.wait(timeout=10)
                self.close_connection = True
                return
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            # A client that gave up (the timeout test) breaks the pipe; keep
            # the error for inspection instead of printing it.
            import sys

            error = sys.exc_info()[1]
            if error is not None:
                receiver.handler_errors.append(error)

    return Server(("127.0.0.1", 0), Handler)


@pytest.fixture
def http_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    yield receiver
    receiver.stop()


# --------------------------------------------------------------------------- TLS


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_cert, self.server_key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Trusts the private CA, with host name checking on (the real defaults)."""
        return ssl.create_default_context(cafile=str(self.ca_cert))


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A private CA and a server certificate for ``localhost``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "driftdesk test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            # No IP address entry on purpose: a client that connects to
            # 127.0.0.1 must verify the certificate against the *name* it was
            # given (the pinned-address HTTPS test depends on this).
            x509.SubjectAlternativeName([x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(
        ca_cert=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
    )
    files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.server_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


@pytest.fixture
def https_receiver(tls_files: TlsFiles) -> Iterator[Receiver]:
    receiver = Receiver(ssl_context=tls_files.server_context())
    receiver.start()
    yield receiver
    receiver.stop()


# --------------------------------------------------------------------------- SMTP


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage


class RecordingHandler:
    """Accepts and records mail, or answers with a chosen reply at RCPT or DATA."""

    def __init__(self) -> None:
        self.mails: list[ReceivedMail] = []
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.rcpt_reply is not None:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply is not None:
            return self.data_reply
        raw = bytes(envelope.original_content or envelope.content)
        parsed = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(parsed, EmailMessage)
        self.mails.append(
            ReceivedMail(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                raw=raw,
                message=parsed,
            )
        )
        return "250 Message accepted for delivery"


class LoopbackController(Controller):
    """``Controller`` on 127.0.0.1 and a free port chosen by the kernel (no races)."""

    def _create_server(self) -> Any:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        return self.loop.create_server(self._factory_invoker, sock=sock, ssl=self.ssl_context)


@dataclass
class SmtpServer:
    handler: RecordingHandler
    controller: LoopbackController
    logins: list[tuple[str, str]]

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self.controller.port)

    @property
    def mails(self) -> list[ReceivedMail]:
        return self.handler.mails


StartSmtp = Callable[..., SmtpServer]


@pytest.fixture
def start_smtp(tls_files: TlsFiles) -> Iterator[StartSmtp]:
    """Start an SMTP server: ``start_smtp(security="none"|"starttls"|"tls", credentials=None)``.

    ``credentials`` (login, password) require ``security="starttls"``.
    """
    started: list[SmtpServer] = []

    def start(*, security: str = "none", credentials: tuple[str, str] | None = None) -> SmtpServer:
        handler = RecordingHandler()
        logins: list[tuple[str, str]] = []
        kwargs: dict[str, Any] = {"ready_timeout": 5.0}
        if security == "starttls":
            kwargs.update(tls_context=tls_files.server_context(), require_starttls=True)
        elif security == "tls":
            kwargs.update(ssl_context=tls_files.server_context())
        if credentials is not None:

            def authenticator(
                server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
            ) -> AuthResult:
                # handled=False: aiosmtpd then answers 535 itself.
                if not isinstance(auth_data, LoginPassword):
                    return AuthResult(success=False, handled=False)
                login = auth_data.login.decode()
                password = auth_data.password.decode()
                logins.append((login, password))
                return AuthResult(success=(login, password) == credentials, handled=False)

            # aiosmtpd counts only STARTTLS as TLS (it refuses AUTH, or warns,
            # over implicit TLS), so AUTH is offered with STARTTLS only.
            if security != "starttls":
                raise ValueError("credentials need security='starttls'")
            kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=True)
        controller = LoopbackController(handler, hostname="127.0.0.1", **kwargs)
        controller.start()
        server = SmtpServer(handler=handler, controller=controller, logins=logins)
        started.append(server)
        return server

    yield start
    for server in started:
        server.controller.stop()


@pytest.fixture
def smtp_server(start_smtp: StartSmtp) -> SmtpServer:
    return start_smtp()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --------------------------------------------------------------------------- messages


def build_message(**overrides: Any) -> Any:
    """An ``AlertMessage`` for a drift incident, any field overridable."""
    from app.alerting.message import AlertMessage

    values: dict[str, Any] = {
        "alert_id": "4711",
        "dedup_key": "drift.incident:churn-classifier:42",
        "rule": "drift.incident",
        "model": "churn-classifier",
        "severity": "critical",
        "status": "firing",
        "title": "Drift on churn-classifier: 4 of 12 features",
        "summary": "age, plan, tenure and region drifted (PSI up to 0.31).",
        "occurred_at": dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC),
        "fields": [("features drifted", "4 / 12"), ("window", "5000 predictions")],
        "links": {
            "ticket": "https://driftdesk.example/ui/tickets/9",
            "dashboard": "https://driftdesk.example/ui/models/churn-classifier",
            "report": "https://driftdesk.example/v1/models/churn-classifier/drift/report?evaluation=77",
        },
    }
    values.update(overrides)
    return AlertMessage(**values)


@pytest.fixture
def make_message() -> Callable[..., Any]:
    return build_message


# --------------------------------------------------------------------------- the service


@pytest.fixture
def settings(db_url: str, smtp_server: SmtpServer) -> Any:
    """The service's settings for alerting tests: loopback targets allowed, mail to ``smtp_server``."""
    from tests.conftest import make_settings

    return make_settings(
        db_url,
        allow_private_targets=True,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_security="none",
        smtp_timeout_seconds=2.0,
        alert_send_timeout_seconds=2.0,
        public_url="https://driftdesk.example",
    )


WEBHOOK_SECRET = "whsec_" + "c2VjcmV0LXNpZ25pbmcta2V5LWZvci10ZXN0cy0wMDE="  # 32 bytes


def add_channel(client: Any, **body: Any) -> dict[str, Any]:
    """POST /v1/alert-channels; returns the response body."""
    r = client.post("/v1/alert-channels", json=body)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def add_webhook(
    client: Any, receiver: Receiver, name: str = "hook", **extra: Any
) -> dict[str, Any]:
    return add_channel(
        client,
        name=name,
        kind="webhook",
        target=f"http://127.0.0.1:{receiver.port}/{name}",
        secret=WEBHOOK_SECRET,
        **extra,
    )


def alerts(client: Any, **params: Any) -> list[dict[str, Any]]:
    r = client.get("/v1/alerts", params={"limit": 1000, **params})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def drain(db: Any, settings: Any, now: dt.datetime | None = None, rounds: int = 50) -> int:
    """Run the dispatcher until it finds nothing due; returns the deliveries it sent."""
    from app.alerting.dispatcher import dispatch_due

    total = 0
    for _ in range(rounds):
        sent = dispatch_due(db, settings, now=now)
        if not sent:
            return total
        total += sent
    raise AssertionError("the dispatcher never ran out of work")
