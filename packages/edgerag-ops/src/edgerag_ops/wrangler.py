"""Run the real wrangler CLI for one tenant, with that tenant's credentials and nothing else.

Which wrangler: ``$EDGERAG_WRANGLER`` (a path, or a command line such as ``npx wrangler``), else the
repository's ``node_modules/.bin/wrangler`` (installed by ``scripts/setup``), else ``npx wrangler``.

The child environment carries the tenant's token as ``CLOUDFLARE_API_TOKEN`` and account as
``CLOUDFLARE_ACCOUNT_ID`` and drops every other ``CLOUDFLARE_*`` credential of the caller, so one
tenant's deploy can never act with another tenant's token. ``CLOUDFLARE_API_BASE_URL`` passes through
(the local emulator in tests). Output is captured; the token is redacted from anything kept or shown.
stdin is closed, so wrangler never waits on a prompt: it takes its non-interactive defaults.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .cloudflare import Credentials

__all__ = ["Wrangler", "WranglerError", "WranglerResult", "find_wrangler"]

# Credentials the caller may have exported for some other account; never inherited by the child.
_DROP = (
    "CLOUDFLARE_API_TOKEN",
    "CLOUDFLARE_API_KEY",
    "CLOUDFLARE_EMAIL",
    "CLOUDFLARE_ACCOUNT_ID",
    "CF_API_TOKEN",
    "CF_API_KEY",
    "CF_EMAIL",
    "CF_ACCOUNT_ID",
)


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _essential(output: str) -> str:
    """wrangler's own error block when there is one (it follows a ``[ERROR]`` marker), else the tail."""
    text = _ANSI.sub("", output).strip()
    marker = text.rfind("[ERROR]")
    if marker >= 0:
        start = text.rfind("\n", 0, marker) + 1
        text = text[start:]
        text = text.split("If you think this is a bug", 1)[0]
    return "\n".join(line.rstrip() for line in text.strip().splitlines()[-40:] if line.strip())


class WranglerError(Exception):
    """wrangler exited non-zero; the message holds the command and wrangler's error (or its last lines)."""

    def __init__(self, args: Sequence[str], returncode: int, output: str) -> None:
        self.args_run = list(args)
        self.returncode = returncode
        self.output = output
        super().__init__(f"wrangler {' '.join(args)} exited {returncode}:\n{_essential(output)}")


@dataclass(frozen=True)
class WranglerResult:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def find_wrangler(repo_root: Path, environ: Mapping[str, str]) -> list[str]:
    override = environ.get("EDGERAG_WRANGLER")
    if override:
        return shlex.split(override)
    local = repo_root / "node_modules" / ".bin" / "wrangler"
    if local.exists():
        return [str(local)]
    return ["npx", "--no-install", "wrangler"]


class Wrangler:
    def __init__(
        self,
        command: Sequence[str],
        credentials: Credentials,
        *,
        environ: Mapping[str, str],
        log_dir: Path,
        timeout: float = 300.0,
    ) -> None:
        self.command = list(command)
        self._credentials = credentials
        self._environ = environ
        self._log_dir = log_dir
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"Wrangler({self.command!r}, account={self._credentials.account_id!r})"

    def child_env(self) -> dict[str, str]:
        env = {k: v for k, v in self._environ.items() if k not in _DROP}
        env.update(
            CLOUDFLARE_API_TOKEN=self._credentials.token,
            CLOUDFLARE_ACCOUNT_ID=self._credentials.account_id,
            WRANGLER_SEND_METRICS="false",
            WRANGLER_LOG_PATH=str(self._log_dir),
            NO_COLOR="1",
            FORCE_COLOR="0",
        )
        env.setdefault("PATH", os.defpath)
        return env

    def redact(self, text: str) -> str:
        token = self._credentials.token
        return text.replace(token, "***") if token else text

    def run(self, args: Sequence[str], *, cwd: Path, check: bool = True) -> WranglerResult:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        try:
            proc = subprocess.run(
                [*self.command, *args],
                cwd=cwd,
                env=self.child_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=self._timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise WranglerError(list(args), -1, self.redact(str(exc))) from exc
        result = WranglerResult(
            tuple(args), proc.returncode, self.redact(proc.stdout), self.redact(proc.stderr)
        )
        if check and proc.returncode != 0:
            raise WranglerError(
                list(args), proc.returncode, result.stdout[-2000:] + "\n" + result.stderr[-2000:]
            )
        return result
