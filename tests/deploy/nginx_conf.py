"""Render deploy/nginx/nginx.conf for a local run: local replicas, free ports, temporary paths."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.tools import DEPLOY, require_binary

TEMPLATE = DEPLOY / "nginx/nginx.conf"
TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
# The nginx image's NGINX_ENVSUBST_FILTER for this template: only these variables are filled in.
ENV_FILTER = re.compile(r"^KERASSERVE_(TLS_|NGINX_)")


def _sub_once(pattern: str, replacement: str, text: str) -> str:
    """Replace exactly one match, so that a change to the template breaks the test loudly."""
    out, count = re.subn(pattern, lambda _: replacement, text, flags=re.MULTILINE)
    if count != 1:
        raise AssertionError(f"{pattern!r} matched {count} times in {TEMPLATE}; expected once")
    return out


def envsubst(text: str, env: Mapping[str, str]) -> str:
    """What the nginx image's 20-envsubst-on-templates.sh does: the real `envsubst`, limited to
    the variables that are set and pass the filter, so nginx's own `$host` stays untouched."""
    names = sorted(name for name in env if ENV_FILTER.search(name))
    shell_format = " ".join(f"${{{name}}}" for name in names)
    result = subprocess.run(
        [require_binary("envsubst"), shell_format],
        input=text,
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), **env},
        timeout=30,
        check=True,
    )
    return result.stdout


@dataclass
class Rendered:
    conf: Path
    prefix: Path
    error_log: Path
    access_log: Path
    pid: Path

    def command(self, nginx: str, *args: str) -> list[str]:
        return [
            nginx,
            "-c",
            str(self.conf),
            "-p",
            f"{self.prefix}/",
            "-e",
            str(self.error_log),
            *args,
        ]

    def test(self, nginx: str) -> subprocess.CompletedProcess[str]:
        """`nginx -t` on the rendered file."""
        return subprocess.run(
            self.command(nginx, "-t", "-g", f"pid {self.pid};"),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )


def render(
    directory: Path,
    http_port: int,
    tls_port: int,
    replica_ports: list[int],
    env: Mapping[str, str],
) -> Rendered:
    """Write the compose nginx config with its upstream swapped for 127.0.0.1 replicas, its two
    listeners on local ports and its certificate paths filled in from `env` (as the image does)."""
    text = envsubst(TEMPLATE.read_text(), env)
    match = re.search(r"^([ \t]*)server kerasserve:8000([^;]*);", text, flags=re.MULTILINE)
    assert match, f"no `server kerasserve:8000 ...;` upstream line in {TEMPLATE}"
    indent, params = match.groups()
    servers = "\n".join(f"{indent}server 127.0.0.1:{port}{params};" for port in replica_ports)
    text = _sub_once(r"^[ \t]*server kerasserve:8000[^;]*;", servers, text)
    text = _sub_once(r"^[ \t]*listen 8080;", f"        listen 127.0.0.1:{http_port};", text)
    text = _sub_once(r"^[ \t]*listen 443 ssl;", f"        listen 127.0.0.1:{tls_port} ssl;", text)
    error_log = directory / "error.log"
    access_log = directory / "access.log"
    text = _sub_once(r"^error_log /var/log/nginx/error\.log", f"error_log {error_log}", text)
    text = _sub_once(
        r"^[ \t]*access_log /var/log/nginx/access\.log", f"    access_log {access_log}", text
    )
    # Debian's nginx keeps its temporary files under /var/lib/nginx, the image under
    # /var/cache/nginx: point both at the test's own folder.
    temp = "".join(f"    {name}_temp_path {directory / name};\n" for name in TEMP_DIRS)
    text = _sub_once(r"^http \{\n", "http {\n" + temp, text)
    for name in TEMP_DIRS:
        (directory / name).mkdir(exist_ok=True)
        (directory / name).chmod(0o777)  # nginx's workers may run as another user
    conf = directory / "nginx.conf"
    conf.write_text(text)
    return Rendered(conf, directory, error_log, access_log, directory / "nginx.pid")
