"""The compose nginx config, for real: `nginx -t`, then nginx in front of two live replicas.

The replicas are real `kerasserve serve` processes (MobileNetV2, random weights) on 127.0.0.1; the
config is deploy/nginx/nginx.conf with only its upstream, ports and paths swapped and its
certificate paths filled in from the environment (nginx_conf.py), serving a self-signed
certificate made here. Clients talk HTTPS and check that certificate; plain HTTP only redirects.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import ipaddress
import json
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.deploy.nginx_conf import TEMPLATE, Rendered, render
from tests.deploy.tools import require_binary, require_module
from tests.support.live_server import LiveServer, block_until_ready, free_port, live_server

ADMIN_KEY = "deploy-admin-key"
REPLICA_ARGS = (
    "--model", "MobileNetV2", "--weights", "none", "--max-batch-size", "4",
    "--admin-key", ADMIN_KEY,
)  # fmt: skip
PREDICT = "/v1/models/MobileNetV2/predict"
HSTS = "max-age=31536000"


def _nginx() -> str:
    return require_binary("nginx", "/usr/sbin", "/usr/local/sbin")


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(out, format="PNG")
    return out.getvalue()


IMAGE = {"image": ("blue.png", _png(), "image/png")}


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    # Not pytest's tmp_path: nginx's workers may run as another user, who cannot enter it.
    path = Path(tempfile.mkdtemp(prefix="kerasserve-nginx-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@dataclass
class Certificate:
    """A self-signed certificate for localhost / 127.0.0.1, and a client context trusting it."""

    cert: Path
    key: Path
    der: bytes

    @property
    def env(self) -> dict[str, str]:
        """The environment the nginx image would be started with."""
        return {"KERASSERVE_TLS_CERT": str(self.cert), "KERASSERVE_TLS_KEY": str(self.key)}

    def context(self, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cadata=self.der)
        if version is not None:
            ctx.minimum_version = ctx.maximum_version = version
        return ctx


@pytest.fixture(scope="module")
def certificate(workdir: Path) -> Certificate:
    require_module("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = workdir / "tls"
    folder.mkdir()
    cert_path, key_path = folder / "fullchain.pem", folder / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)  # read by nginx's master (root), never by its workers
    return Certificate(cert_path, key_path, cert.public_bytes(serialization.Encoding.DER))


def _render(
    directory: Path, certificate: Certificate, replica_ports: list[int], admin: str = "off"
) -> Rendered:
    env = {**certificate.env, "KERASSERVE_NGINX_ADMIN": admin}
    return render(directory, free_port(), free_port(), replica_ports, env)


def _ports(rendered: Rendered) -> tuple[int, int]:
    """(HTTP, HTTPS) ports of a rendered config."""
    text = rendered.conf.read_text()
    (http,) = re.findall(r"listen 127\.0\.0\.1:(\d+);", text)
    (tls,) = re.findall(r"listen 127\.0\.0\.1:(\d+) ssl;", text)
    return int(http), int(tls)


def test_config_passes_nginx_t(workdir: Path, certificate: Certificate):
    nginx = _nginx()
    (workdir / "t").mkdir()
    rendered = _render(workdir / "t", certificate, [free_port(), free_port()])
    result = rendered.test(nginx)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_only_the_certificate_paths_and_the_admin_switch_come_from_the_environment():
    """envsubst fills `${KERASSERVE_TLS_*}` and `${KERASSERVE_NGINX_ADMIN}`, nothing else:
    nginx's `$host` and friends stay."""
    template = TEMPLATE.read_text()
    directives = [line for line in template.splitlines() if not line.lstrip().startswith("#")]
    used = set(re.findall(r"\$\{(\w+)\}", "\n".join(directives)))
    assert used == {"KERASSERVE_TLS_CERT", "KERASSERVE_TLS_KEY", "KERASSERVE_NGINX_ADMIN"}


def test_without_the_certificate_environment_nginx_refuses_to_start(workdir: Path):
    """No half-secure start: unset paths stay `${...}`, which nginx reads as an unknown variable."""
    nginx = _nginx()
    (workdir / "no-env").mkdir()
    env = {"KERASSERVE_NGINX_ADMIN": "off"}
    rendered = render(workdir / "no-env", free_port(), free_port(), [free_port()], env)
    assert "ssl_certificate ${KERASSERVE_TLS_CERT};" in rendered.conf.read_text()
    result = rendered.test(nginx)
    assert result.returncode != 0
    assert 'unknown "kerasserve_tls_cert" variable' in result.stderr, result.stderr


def test_without_the_admin_switch_nginx_refuses_to_start(workdir: Path, certificate: Certificate):
    """Closed, never open by omission: an unset KERASSERVE_NGINX_ADMIN stops nginx."""
    nginx = _nginx()
    (workdir / "no-admin-env").mkdir()
    rendered = render(
        workdir / "no-admin-env", free_port(), free_port(), [free_port()], certificate.env
    )
    result = rendered.test(nginx)
    assert result.returncode != 0
    assert 'unknown "kerasserve_nginx_admin" variable' in result.stderr, result.stderr


@contextlib.contextmanager
def _replicas(count: int = 2) -> Iterator[list[LiveServer]]:
    _nginx()  # skip (or fail under CI) before paying for the servers
    with contextlib.ExitStack() as stack:
        servers = [
            stack.enter_context(live_server(*REPLICA_ARGS, wait_ready=False)) for _ in range(count)
        ]
        # They load and warm at once; wait for them together.
        deadline = time.monotonic() + 240
        for server in servers:
            block_until_ready(server, max(0.0, deadline - time.monotonic()))
        yield servers


@dataclass
class Balancer:
    url: str  # https://127.0.0.1:<port>
    http_url: str  # the plain-HTTP listener
    rendered: Rendered
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        logs = (self.rendered.error_log, self.rendered.access_log)
        return "\n".join(p.read_text(errors="replace") for p in logs if p.exists())


@contextlib.contextmanager
def _balancer(
    replicas: list[LiveServer], directory: Path, certificate: Certificate, admin: str = "off"
) -> Iterator[Balancer]:
    """The real nginx, in the foreground, on the rendered config."""
    nginx = _nginx()
    directory.mkdir()
    rendered = _render(directory, certificate, [s.port for s in replicas], admin)
    assert rendered.test(nginx).returncode == 0
    http_port, tls_port = _ports(rendered)
    command = rendered.command(nginx, "-g", f"daemon off; pid {rendered.pid};")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    balancer = Balancer(
        f"https://127.0.0.1:{tls_port}", f"http://127.0.0.1:{http_port}", rendered, process
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, f"nginx exited:\n{balancer.log()}"
            try:
                health = httpx.get(
                    f"{balancer.url}/nginx-health", timeout=2, verify=certificate.context()
                )
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)
        yield balancer
    finally:
        process.send_signal(signal.SIGQUIT)  # graceful
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="module")
def replicas() -> Iterator[list[LiveServer]]:
    with _replicas() as servers:
        yield servers


@pytest.fixture(scope="module")
def balancer(
    replicas: list[LiveServer], workdir: Path, certificate: Certificate
) -> Iterator[Balancer]:
    with _balancer(replicas, workdir / "live", certificate) as b:
        yield b


@pytest.fixture
def client(balancer: Balancer, certificate: Certificate) -> Iterator[httpx.Client]:
    # Verifies the certificate, as WeChat does: a self-signed one is trusted here only because
    # this client was told to.
    with httpx.Client(base_url=balancer.url, timeout=60, verify=certificate.context()) as c:
        yield c


def test_https_is_refused_by_a_client_that_does_not_trust_the_certificate(balancer: Balancer):
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{balancer.url}/nginx-health", timeout=10)


@pytest.mark.parametrize(
    ("version", "name"),
    [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")],
)
def test_tls_1_2_and_1_3_serve_our_certificate(
    balancer: Balancer, certificate: Certificate, version: ssl.TLSVersion, name: str
):
    port = int(balancer.url.rsplit(":", 1)[1])
    ctx = certificate.context(version)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() == name
        assert tls.getpeercert(binary_form=True) == certificate.der


def test_plain_http_redirects_to_https_keeping_path_query_and_method(balancer: Balancer):
    with httpx.Client(base_url=balancer.http_url, timeout=10) as plain:
        get = plain.get("/v1/models?lang=zh-CN", headers={"Host": "kerasserve.example.com"})
        post = plain.post(PREDICT, files=IMAGE, headers={"Host": "kerasserve.example.com"})
        health = plain.get("/nginx-health")
    assert get.status_code == 308
    assert get.headers["location"] == "https://kerasserve.example.com/v1/models?lang=zh-CN"
    assert "x-upstream" not in get.headers, "nothing reaches a replica over plain HTTP"
    # 308 keeps the method: a POST is sent again as a POST, not turned into a GET.
    assert post.status_code == 308
    assert post.headers["location"] == f"https://kerasserve.example.com{PREDICT}"
    # The container's health check stays on plain HTTP, and HSTS is for HTTPS answers only.
    assert health.status_code == 200
    assert "strict-transport-security" not in health.headers


def test_every_https_answer_carries_hsts(client: httpx.Client):
    answers = {
        "predict": client.post(PREDICT, files=IMAGE),
        "models": client.get("/v1/models"),
        "metrics (404 by nginx)": client.get("/metrics"),
        "health": client.get("/nginx-health"),
        "too large (413 by nginx)": client.post(
            PREDICT, files={"image": ("big.png", b"\0" * (10 * 1024 * 1024 + 1), "image/png")}
        ),
    }
    assert [r.status_code for r in answers.values()] == [200, 200, 404, 200, 413]
    missing = [
        what for what, r in answers.items() if r.headers.get("strict-transport-security") != HSTS
    ]
    assert missing == []


def _addr(server: LiveServer) -> str:
    return f"127.0.0.1:{server.port}"


def test_requests_spread_over_both_replicas(
    client: httpx.Client, replicas: list[LiveServer], balancer: Balancer
):
    served: Counter[str] = Counter()
    for _ in range(20):
        r = client.post(PREDICT, files=IMAGE)
        assert r.status_code == 200, f"{r.status_code} {r.text}\n{balancer.log()}"
        assert r.json()["results"][0]["predictions"]
        served[r.headers["x-upstream"]] += 1
    assert set(served) == {_addr(s) for s in replicas}, served
    # least_conn with no request in flight falls back to round robin: an even split.
    assert min(served.values()) >= 5, served

    # Concurrent clients too.
    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda _: client.post(PREDICT, files=IMAGE), range(24)))
    assert [r.status_code for r in responses] == [200] * 24
    assert {r.headers["x-upstream"] for r in responses} == {_addr(s) for s in replicas}


def test_request_id_goes_through_to_the_replica(client: httpx.Client, balancer: Balancer):
    r = client.get("/v1/models", headers={"X-Request-ID": "deploy-test-4242"})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "deploy-test-4242"
    # nginx writes the access log line just after the response, so give it a moment.
    deadline = time.monotonic() + 5
    while "rid=deploy-test-4242" not in balancer.rendered.access_log.read_text():
        assert time.monotonic() < deadline, balancer.log()
        time.sleep(0.05)
    # Without one, nginx makes one and the replica echoes it.
    assert len(client.get("/healthz").headers["x-request-id"]) >= 16


def test_upload_over_the_limit_is_refused_by_nginx_as_json(client: httpx.Client):
    big = {"image": ("big.png", b"\0" * (10 * 1024 * 1024 + 1), "image/png")}
    r = client.post(PREDICT, files=big)
    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large"
    assert "x-upstream" not in r.headers, "nginx refused it without troubling a replica"


def test_metrics_are_not_public_through_the_balancer(client: httpx.Client):
    r = client.get("/metrics")
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"


ADMIN_PATHS = [
    ("POST", "/v1/models/MobileNetV2/load"),
    ("POST", "/v1/models/MobileNetV2/unload"),
    ("GET", "/v1/repository/index"),
    ("POST", "/v1/classifiers/cats"),
    ("DELETE", "/v1/classifiers/cats"),
    # Spellings nginx normalises before matching ($uri): they must not slip through.
    ("POST", "/v1//models/MobileNetV2/load"),
    ("POST", "/v1/models/MobileNetV2/./unload"),
    ("POST", "/v1/models/MobileNetV2/%6Coad"),
    ("GET", "/v1/x/../repository/index"),
]


def _raw(balancer: Balancer, certificate: Certificate, method: str, path: str,
         headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    """One request with its path sent byte for byte (httpx would normalise it)."""
    port = int(balancer.url.rsplit(":", 1)[1])
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", "Content-Length: 0",
             "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]  # fmt: skip
    with (
        socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
        certificate.context().wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    found = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
    return int(status_line.split()[1]), found, body


@pytest.mark.parametrize(("method", "path"), ADMIN_PATHS)
def test_admin_routes_are_refused_by_nginx_unless_opened(
    balancer: Balancer, certificate: Certificate, method: str, path: str
):
    """KERASSERVE_NGINX_ADMIN=off (the default): 403 from nginx itself, in the API's error
    shape, even with the right admin key; no replica sees the request."""
    status, headers, body = _raw(balancer, certificate, method, path, {"X-API-Key": ADMIN_KEY})
    assert status == 403, body
    error = json.loads(body)
    assert error["code"] == "forbidden"
    assert "KERASSERVE_NGINX_ADMIN=on" in error["message"]
    assert error["request_id"]
    assert "x-upstream" not in headers
    assert headers["strict-transport-security"] == HSTS


def test_admin_routes_through_nginx_once_opened(
    replicas: list[LiveServer], workdir: Path, certificate: Certificate
):
    """KERASSERVE_NGINX_ADMIN=on: nginx forwards them and the replica's own admin key decides
    (401 without it or with a wrong one, 200 with it in either header)."""
    index = "/v1/repository/index"
    with (
        _balancer(replicas, workdir / "admin-on", certificate, admin="on") as opened,
        httpx.Client(base_url=opened.url, timeout=60, verify=certificate.context()) as c,
    ):
        missing = c.get(index)
        wrong = c.get(index, headers={"X-API-Key": "not-the-key"})
        by_header = c.get(index, headers={"X-API-Key": ADMIN_KEY})
        by_bearer = c.get(index, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        models = c.get("/v1/models")
    for refused in (missing, wrong):
        assert refused.status_code == 401, refused.text
        assert refused.json()["code"] == "unauthorized"
        assert "x-upstream" in refused.headers, "the replica answered, not nginx"
    assert by_header.status_code == 200, by_header.text
    assert by_header.json()["models"][0]["name"] == "MobileNetV2"
    assert by_bearer.status_code == 200
    assert models.status_code == 200


def test_replica_stopped_with_sigterm_drains_without_failing_clients(
    replicas: list[LiveServer], workdir: Path, certificate: Certificate
):
    """`docker stop` / a rolling update: SIGTERM (the image's STOPSIGNAL) under load.

    The replica stops accepting, finishes what it accepted and exits 0 well within its drain
    timeout; nginx sends whatever it could not take to the other replica. The one stopped is
    started here; the one staying is the module's second replica, which keeps serving (the
    next test kills both of the module's replicas), so this test starts one server, not two.
    """
    staying = replicas[1]
    with (
        _replicas(1) as (stopping,),
        _balancer([stopping, staying], workdir / "drain", certificate) as balancer,
        httpx.Client(base_url=balancer.url, timeout=60, verify=certificate.context()) as client,
    ):

        def predict(_: int) -> httpx.Response:
            return client.post(PREDICT, files=IMAGE)

        with ThreadPoolExecutor(4) as pool:
            warmup = list(pool.map(predict, range(8)))
            in_flight = [pool.submit(predict, i) for i in range(40)]
            started = time.monotonic()
            stopping.process.send_signal(signal.SIGTERM)
            during = [f.result() for f in in_flight]
            returncode = stopping.process.wait(40)
            stopped_after = time.monotonic() - started
        after = [predict(i) for i in range(6)]

        for r in [*warmup, *during, *after]:
            assert r.status_code == 200, f"{r.status_code} {r.text}\n{balancer.log()}"
        # uvicorn re-raises the signal once it has shut down cleanly: 143 in a container.
        assert returncode in (0, -signal.SIGTERM), stopping.log()
        assert "Application shutdown complete" in stopping.log()
        print(f"SIGTERM to exit: {stopped_after:.1f}s")
        assert stopped_after < 30, f"drain took {stopped_after:.1f}s"
        assert all(r.headers["x-upstream"].endswith(_addr(staying)) for r in after)


def test_killed_replica_does_not_fail_clients(
    client: httpx.Client, replicas: list[LiveServer], balancer: Balancer
):
    """SIGKILL one replica while requests are in flight: every client still gets a 200.

    Runs last in this module: it kills the replicas.
    """
    victim, survivor = replicas

    def predict(_: int) -> httpx.Response:
        return client.post(PREDICT, files=IMAGE)

    with ThreadPoolExecutor(4) as pool:
        warmup = list(pool.map(predict, range(8)))
        in_flight = [pool.submit(predict, i) for i in range(40)]
        victim.process.kill()
        victim.process.wait(10)
        during = [f.result() for f in in_flight]
    after = [predict(i) for i in range(10)]

    for r in [*warmup, *during, *after]:
        assert r.status_code == 200, f"{r.status_code} {r.text}\n{balancer.log()}"
    # After the kill, the survivor answers everything (a retried request lists both replicas).
    assert all(r.headers["x-upstream"].endswith(_addr(survivor)) for r in after)
    retried = sum("," in r.headers["x-upstream"] for r in during + after)
    print(f"{retried} of {len(during) + len(after)} requests were retried on the survivor")

    # With no replica left, nginx answers in the API's error shape, with Retry-After.
    survivor.process.kill()
    survivor.process.wait(10)
    r = predict(0)
    assert r.status_code == 503
    assert r.json()["code"] == "not_ready"
    assert r.headers["retry-after"] == "5"
    assert r.headers["strict-transport-security"] == HSTS
