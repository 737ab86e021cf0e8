"""Streaming multipart parsing: uploads go straight into the job's folder, and stop at the size limit."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from .apierror import ApiError
from .workdir import safe_suffix

MAX_FIELD_BYTES = 1024 * 1024
MAX_FILES = 4


@dataclass
class Upload:
    """One uploaded file, stored under the work folder with a name we chose."""

    path: Path
    filename: str
    size: int


@dataclass
class Form:
    """Parsed multipart form: text fields (every value, for repeated names) and files."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, Upload] = field(default_factory=dict)

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.fields.get(name)
        return values[-1] if values else default

    def getlist(self, name: str) -> list[str]:
        return self.fields.get(name, []) + self.fields.get(f"{name}[]", [])


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"upload is larger than the server's limit of {limit / 2**20:.0f} MB")


def check_length(request: Request, limit: int) -> None:
    """Refuse a body whose declared length is over the limit before reading any of it."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, "invalid Content-Length header") from None
        if size > limit:
            raise too_large(limit)


async def read_form(request: Request, folder: Path, limit: int, timeout: float) -> Form:
    """Parse a multipart/form-data body into `folder`: 413 past `limit` bytes, 408 past `timeout` s."""
    try:
        return await asyncio.wait_for(_read_form(request, folder, limit), timeout)
    except TimeoutError:
        raise ApiError(408, f"upload not complete within {timeout:.0f} s") from None


class _Parts:
    """python-multipart's callbacks for one body: each file part streams into `folder` under a
    name we choose, each text field is kept (up to MAX_FIELD_BYTES), all into `form`."""

    def __init__(self, folder: Path, form: Form) -> None:
        self.folder, self.form = folder, form
        self.headers: dict[str, bytes] = {}
        self.field, self.value = b"", b""
        self.name: str | None = None
        self.filename: str | None = None
        self.path: Path | None = None
        self.buf = bytearray()
        self.file: IO[bytes] | None = None
        self.size = 0

    def callbacks(self) -> dict:
        """The callback table MultipartParser takes."""
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self.headers, self.name, self.filename = {}, None, None
        self.buf, self.file, self.size = bytearray(), None, 0

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.field.decode("latin-1").lower()] = self.value
        self.field, self.value = b"", b""

    def on_headers_finished(self) -> None:
        _, opts = parse_options_header(self.headers.get("content-disposition", b""))
        name = opts.get(b"name")
        if name is None:
            raise ApiError(400, "multipart part without a field name")
        self.name = name.decode("utf-8", "replace")
        if b"filename" in opts:
            if len(self.form.files) >= MAX_FILES:
                raise ApiError(400, f"at most {MAX_FILES} files per request")
            self.filename = opts[b"filename"].decode("utf-8", "replace")
            self.path = self.folder / f"upload-{len(self.form.files)}{safe_suffix(self.filename)}"
            self.file = open(self.path, "wb")  # noqa: SIM115 - closed in on_part_end / close

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        self.size += len(chunk)
        if self.file is not None:
            self.file.write(chunk)
        elif self.size > MAX_FIELD_BYTES:
            raise ApiError(413, f"form field '{self.name}' is over {MAX_FIELD_BYTES // 1024} KB")
        else:
            self.buf += chunk

    def on_part_end(self) -> None:
        assert self.name is not None
        if self.file is not None:
            self.file.close()
            self.file = None
            assert self.path is not None and self.filename is not None
            self.form.files[self.name] = Upload(self.path, self.filename, self.size)
        else:
            text = bytes(self.buf).decode("utf-8", "replace")
            self.form.fields.setdefault(self.name, []).append(text)

    def close(self) -> None:
        """Close a file part left open by a body that stopped early."""
        if self.file is not None:
            self.file.close()


async def _read_form(request: Request, folder: Path, limit: int) -> Form:
    mime, params = parse_options_header(request.headers.get("content-type", ""))
    if mime != b"multipart/form-data" or b"boundary" not in params:
        raise ApiError(415, "send the request as multipart/form-data (a file upload form)")
    check_length(request, limit)
    form = Form()
    parts = _Parts(folder, form)
    parser = MultipartParser(params[b"boundary"], parts.callbacks())
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise too_large(limit)
            parser.write(chunk)
        parser.finalize()
    except ApiError:
        raise
    except Exception as exc:  # python-multipart raises its own errors on malformed bodies
        raise ApiError(400, f"malformed multipart body ({type(exc).__name__})") from None
    finally:
        parts.close()
    return form
