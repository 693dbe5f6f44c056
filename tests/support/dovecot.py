"""A real Dovecot IMAP server for a test: its own configuration in a temporary directory, listening
on loopback on an ephemeral port, users from a passwd-file.

Dovecot runs as the current user; it refuses to run mail or login processes as root, so when the
tests run as root the mail files belong to ``nobody`` and login processes use ``dovenull``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


@dataclass(frozen=True)
class ImapServer:
    host: str
    port: int
    username: str
    password: str


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _config(
    root: Path, port: int, user: str, group: str, login_user: str, mail_uid: int, mail_gid: int
) -> str:
    return f"""
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {login_user}
first_valid_uid = 0
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""


@contextmanager
def dovecot_server(
    username: str = "support@example.com", password: str = "imap-secret"
) -> Iterator[ImapServer]:
    root = Path(tempfile.mkdtemp(prefix="opsdesk-dovecot-"))
    root.chmod(0o755)  # the unprivileged login and mail processes must reach their directories
    current = pwd.getpwuid(os.getuid())
    if os.getuid() == 0:
        nobody = pwd.getpwnam("nobody")
        mail_uid, mail_gid, login_user = nobody.pw_uid, nobody.pw_gid, "dovenull"
    else:
        mail_uid, mail_gid, login_user = os.getuid(), os.getgid(), current.pw_name
    for name in ("run", "state", "mail", "home"):
        (root / name).mkdir()
    for name in ("mail", "home"):
        os.chown(root / name, mail_uid, mail_gid)
    (root / "passwd").write_text(f"{username}:{{PLAIN}}{password}::::::\n")
    group = os.getgid()
    import grp

    group_name = grp.getgrgid(group).gr_name
    process: subprocess.Popen[bytes] | None = None
    try:
        for _attempt in range(5):
            port = _free_port()
            (root / "dovecot.conf").write_text(
                _config(root, port, current.pw_name, group_name, login_user, mail_uid, mail_gid)
            )
            process = subprocess.Popen(
                [DOVECOT, "-F", "-c", str(root / "dovecot.conf")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if _wait_for_greeting(port, process):
                break
            process.terminate()
            process.wait(timeout=10)
            process = None
        if process is None:
            log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
            raise RuntimeError(f"dovecot did not start: {log[-2000:]}")
        yield ImapServer("127.0.0.1", port, username, password)
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def _wait_for_greeting(port: int, process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                if connection.recv(100).startswith(b"* OK"):
                    return True
        except OSError:
            time.sleep(0.05)
    return False
