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


async def _read_form(request: Request, folder: Path, limit: int) -> Form:
    mime, params = parse_options_header(request.headers.get("content-type", ""))
    if mime != b"multipart/form-data" or b"boundary" not in params:
        raise ApiError(415, "send the request as multipart/form-data (a file upload form)")
    check_length(request, limit)
    form = Form()
    state: dict = {"headers": {}, "field": b"", "value": b""}

    def on_part_begin() -> None:
        state.update(headers={}, name=None, filename=None, buf=bytearray(), file=None, size=0)

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].decode("latin-1").lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        _, opts = parse_options_header(state["headers"].get("content-disposition", b""))
        name = opts.get(b"name")
        if name is None:
            raise ApiError(400, "multipart part without a field name")
        state["name"] = name.decode("utf-8", "replace")
        if b"filename" in opts:
            if len(form.files) >= MAX_FILES:
                raise ApiError(400, f"at most {MAX_FILES} files per request")
            filename = opts[b"filename"].decode("utf-8", "replace")
            state["filename"] = filename
            path = folder / f"upload-{len(form.files)}{safe_suffix(filename)}"
            state["path"] = path
            state["file"] = open(path, "wb")  # noqa: SIM115 - closed in on_part_end / cleanup

    def on_part_data(data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        state["size"] += len(chunk)
        handle: IO[bytes] | None = state["file"]
        if handle is not None:
            handle.write(chunk)
        elif state["size"] > MAX_FIELD_BYTES:
            raise ApiError(
                413, f"form field '{state['name']}' is over {MAX_FIELD_BYTES // 1024} KB"
            )
        else:
            state["buf"] += chunk

    def on_part_end() -> None:
        handle = state["file"]
        if handle is not None:
            handle.close()
            state["file"] = None
            form.files[state["name"]] = Upload(state["path"], state["filename"], state["size"])
        else:
            text = bytes(state["buf"]).decode("utf-8", "replace")
            form.fields.setdefault(state["name"], []).append(text)

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
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
        handle = state.get("file")
        if handle is not None:
            handle.close()
    return form
