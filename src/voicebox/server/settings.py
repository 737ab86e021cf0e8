"""Server settings and limits: CLI flags → environment (VOICEBOX_*) → defaults, in one place."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

from ..config import env
from ..errors import InputError

LOOPBACK_NAMES = {"localhost", "ip6-localhost", "ip6-loopback"}


def _number(name: str, default: float) -> float:
    raw = env(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise InputError(f"VOICEBOX_{name.upper()}={raw!r} is not a number") from None


def _default_workers() -> int:
    from ..config import threads

    return max(1, (os.cpu_count() or 1) // threads())


@dataclass
class Settings:
    """Everything `voicebox serve` can be told: bind address, token and the request limits."""

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    max_upload_mb: float = 50.0
    max_audio_seconds: float = 600.0
    max_text_chars: int = 20_000
    workers: int = field(default_factory=_default_workers)
    queue_size: int = 16
    request_timeout_s: float = 300.0
    job_ttl_s: float = 3600.0
    work_dir: str | None = None

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from VOICEBOX_* variables, with explicit (non-None) overrides winning."""
        base = cls(
            token=env("token") or None,
            max_upload_mb=_number("max_upload_mb", cls.max_upload_mb),
            max_audio_seconds=_number("max_audio_seconds", cls.max_audio_seconds),
            max_text_chars=int(_number("max_text_chars", cls.max_text_chars)),
            workers=int(_number("serve_workers", _default_workers())),
            queue_size=int(_number("queue_size", cls.queue_size)),
            request_timeout_s=_number("request_timeout", cls.request_timeout_s),
            job_ttl_s=_number("job_ttl", cls.job_ttl_s),
            work_dir=env("work_dir") or None,
        )
        for key, value in overrides.items():
            if value is not None:
                setattr(base, key, value)
        base.validate()
        return base

    def validate(self) -> None:
        """Refuse settings that cannot work, and a public bind without a token."""
        if self.workers < 1:
            raise InputError("workers must be at least 1")
        if self.queue_size < 0:
            raise InputError("queue size cannot be negative")
        for name in ("max_upload_mb", "max_audio_seconds", "request_timeout_s", "job_ttl_s"):
            if getattr(self, name) <= 0:
                raise InputError(f"{name} must be positive")
        if self.max_text_chars < 1:
            raise InputError("max_text_chars must be positive")
        if not (0 < self.port < 65536):
            raise InputError(f"port {self.port} is out of range (1-65535)")
        if not is_loopback(self.host) and not self.token:
            raise InputError(
                f"refusing to listen on {self.host} without a token: anyone on the network could "
                "use this server; pass --token SECRET (or set VOICEBOX_TOKEN), or bind 127.0.0.1"
            )


def is_loopback(host: str) -> bool:
    """True when `host` only accepts connections from this machine."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
