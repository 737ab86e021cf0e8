"""Run one batch item inside a worker (a pool process or a Ray actor) and describe how it went.

Engines load lazily inside the task modules and stay cached for the life of the process, so a
worker pays for each engine once. Every output is written atomically by the task's own writer.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ..errors import InputError, VoiceboxError
from ..options import TaskOptions
from ..safety import refuse_overwrite
from .jobs import fingerprint
from .manifest import FILE_OPTIONS, Item

if TYPE_CHECKING:
    from ..provenance import Consent

REASON_MAX = 300


def one_line(text: str) -> str:
    """An error message squeezed onto one line of bounded length."""
    line = " ".join(str(text).split())
    return line if len(line) <= REASON_MAX else line[: REASON_MAX - 1] + "…"


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1 << 20 if sys.platform == "darwin" else 1 << 10), 1)


def _clean(item: Item, dst: Path) -> float:
    from ..tasks.clean import CleanOptions, clean_file

    options = CleanOptions.from_mapping(_task_options(item, CleanOptions))
    return float(clean_file(item.source, dst, **options.to_dict()).duration)


def _read(item: Item, dst: Path) -> float:
    from ..audio import save
    from ..tasks.options import ReadOptions
    from ..tasks.read import read

    options = ReadOptions.from_mapping(_task_options(item, ReadOptions))
    speech = read(item.options["text"], **options.to_dict())
    save(speech.audio, dst)
    return float(speech.audio.duration)


def _transcribe(item: Item, dst: Path) -> float:
    from ..audio import load
    from ..tasks.options import TranscribeOptions
    from ..tasks.transcribe import transcribe

    audio = load(item.source)
    given = _task_options(item, TranscribeOptions)
    if item.options.get("task") == "translate":  # a manifest's old spelling
        given.setdefault("translate", True)
    options = TranscribeOptions.from_mapping(given)
    transcript = transcribe(audio, language=options.language, task=options.task)
    transcript.write(dst, item.options.get("format") or dst.suffix.lstrip(".") or "json")
    return float(audio.duration)


def _task_options(item: Item, cls: type[TaskOptions]) -> dict[str, Any]:
    """The item's options that are the task's own (the rest, such as format, are batch's)."""
    return {k: v for k, v in item.options.items() if k in cls.names()}


def _edit(item: Item, dst: Path) -> float:
    from ..audio import load
    from ..tasks.edit import edit
    from ..tasks.options import EditOptions

    options = EditOptions.from_mapping(_task_options(item, EditOptions)).require_ops()
    audio = load(item.source)
    consent = None
    if speaks_as_speaker("edit", item.options):  # the model speaks in this voice: their consent
        consent = consent_of(item.options)
    result = edit(audio, options, consent=consent)
    if result.audio is None:
        raise InputError("the edit produced no audio")
    result.save(dst)  # with `<dst>.provenance.json` holding the consent record when cloning
    return float(audio.duration)


def _read_like(item: Item, dst: Path) -> float:
    from ..tasks.options import ReadLikeOptions
    from ..tasks.read import read_like

    options = ReadLikeOptions.from_mapping(_task_options(item, ReadLikeOptions))
    reference = item.options.get("reference")
    if not reference:
        raise InputError(NO_REFERENCE)
    consent = consent_of(item.options)
    speech = read_like(item.options["text"], reference, consent=consent, **options.to_dict())
    speech.save(dst)  # with `<dst>.provenance.json` holding the consent record
    return float(speech.audio.duration)


NO_REFERENCE = "no voice to read in: give --like REF.wav, or a 'reference' column"


def speaks_as_speaker(task: str, options: dict[str, Any]) -> bool:
    """True when an item has our model speak in a recorded person's voice (so it needs their
    consent): every read_like item, and edits whose engine is voicebox, or auto with consent."""
    if task == "read_like":
        return True
    if task != "edit":
        return False
    from ..tasks.edit import chosen_engine

    given = any(options.get(k) for k in ("consent", "consent_file", "consent_audio"))
    return chosen_engine(options.get("engine") or "auto", given) == "voicebox"


def consent_of(options: dict[str, Any]) -> Consent:
    """The consent an item's options carry (statement, file, spoken clip)."""
    from ..provenance import Consent

    return Consent(
        options.get("consent"), options.get("consent_file"), options.get("consent_audio")
    )


ADAPTERS = {
    "clean": _clean,
    "read": _read,
    "read_like": _read_like,
    "transcribe": _transcribe,
    "edit": _edit,
}


def run_item(task: str, data: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """Do one item and return its result: status ok/failed, a one-line reason, times, memory."""
    item = Item.from_dict(data)
    started, cpu = time.perf_counter(), time.process_time()
    result: dict[str, Any] = {"key": item.key, "status": "failed", "reason": None}
    try:
        if item.source is not None:
            try:
                result["input"] = fingerprint(item.source)
            except FileNotFoundError:
                raise InputError(f"{item.source}: no such file") from None
            except OSError as exc:
                raise InputError(f"{item.source}: cannot read ({exc.strerror})") from None
        dst = Path(out_dir) / PurePosixPath(item.output)
        named = [item.options.get(k) for k in FILE_OPTIONS]  # a reference voice, consent files
        refuse_overwrite([dst], [item.source, *named])  # checked again here: a file may have moved
        dst.parent.mkdir(parents=True, exist_ok=True)
        result["audio_seconds"] = round(ADAPTERS[task](item, dst), 3)
        result["status"] = "ok"
    except VoiceboxError as exc:
        result["reason"] = one_line(str(exc))
    except MemoryError:
        result["reason"] = "out of memory"
    except Exception as exc:  # a bug or an engine failure on this item: report it, keep going
        result["reason"] = one_line(f"{type(exc).__name__}: {exc}")
    result["seconds"] = round(time.perf_counter() - started, 3)
    result["cpu_seconds"] = round(time.process_time() - cpu, 3)
    result["pid"] = os.getpid()
    result["rss_mb"] = peak_rss_mb()
    return result
