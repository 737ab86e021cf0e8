"""`voicebox serve`: the HTTP API and web page, in this process (uvicorn)."""

from __future__ import annotations

import typer

from .app import app, err


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on; non-loopback needs --token."),
    port: int = typer.Option(8000, help="TCP port."),
    token: str | None = typer.Option(
        None, help="Require 'Authorization: Bearer TOKEN' on every API request (or VOICEBOX_TOKEN)."
    ),
    workers: int | None = typer.Option(
        None, help="Engine worker threads (default: cores / threads)."
    ),
    queue: int | None = typer.Option(None, help="Jobs that may wait for a worker before 429."),
    max_upload_mb: float | None = typer.Option(None, help="Largest upload accepted."),
    max_audio_seconds: float | None = typer.Option(None, help="Longest audio accepted."),
    max_text_chars: int | None = typer.Option(None, help="Longest text accepted for reading."),
    timeout: float | None = typer.Option(None, help="Seconds a direct request may run (then 504)."),
    job_ttl: float | None = typer.Option(None, help="Seconds finished jobs are kept."),
    log_level: str = typer.Option("warning", help="uvicorn log level."),
) -> None:
    """Serve the OpenAI-compatible audio API, background jobs and the web page."""
    import uvicorn

    from ..server.app import create_app
    from ..server.settings import Settings

    settings = Settings.from_env(
        host=host,
        port=port,
        token=token,
        workers=workers,
        queue_size=queue,
        max_upload_mb=max_upload_mb,
        max_audio_seconds=max_audio_seconds,
        max_text_chars=max_text_chars,
        request_timeout_s=timeout,
        job_ttl_s=job_ttl,
    )
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    err.print(f"voicebox serving on http://{shown}:{settings.port}/  (Ctrl-C stops)")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        timeout_graceful_shutdown=5,
    )
