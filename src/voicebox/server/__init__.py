"""HTTP server: OpenAI-compatible audio routes, background jobs and the web page."""
