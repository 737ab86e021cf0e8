"""Batch jobs over folders, globs, archives and manifests: resumable, parallel, optionally on Ray.

manifest.py plans the items, jobs.py records what is done, worker.py runs one item, local.py and
ray_engine.py run many, runner.py ties them together. Nothing heavy is imported here.
"""

from __future__ import annotations

TASKS = ("clean", "read", "read_like", "transcribe", "edit")
