"""Provenance: mark generated speech, detect the mark, and record consent for cloned voices.

`mark` hides a 32-bit payload (format version, this install's generator id, the day) in the
audio with voicebox.watermark; `detect` finds it in any file or crop and reports where.
`require_consent` refuses to clone a voice without a consent statement, and records a hash of
the statement and a fingerprint of the reference in a local ledger (consent.jsonl in the cache
folder). Writers put the returned record beside their output as `<output>.provenance.json`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import secrets
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import watermark
from .audio import Audio, atomic_path, check_samples, load, resample
from .config import cache_dir
from .errors import AudioError, InputError

VERSION = 1
"""Payload format version (4 bits)."""
EPOCH = dt.date(2025, 1, 1)
"""Day 0 of the 12-bit day stamp; it wraps every 4096 days (about 11 years)."""
FADE_S = 0.01
"""The mark fades in and out over 10 ms at the edges of a marked span."""
CONTEXT_S = 0.25
"""Audio either side of a span that the embedder reads (never writes) for its analysis."""
MIN_DETECT_S = 1.0
"""Shorter audio holds too few tiles for a verdict either way."""
MIN_STATEMENT = 10
SIDECAR_SUFFIX = ".provenance.json"
GENERATOR_FILE = "generator-id"
LEDGER_FILE = "consent.jsonl"


@dataclass
class Payload:
    """The decoded 32 bits: format version, generator id and the day the audio was marked."""

    version: int
    generator: int
    day: int

    def pack(self) -> int:
        """The 32-bit integer carried by the watermark."""
        return (self.version & 0xF) << 28 | (self.generator & 0xFFFF) << 12 | (self.day & 0xFFF)

    @classmethod
    def unpack(cls, value: int) -> Payload:
        """Split a 32-bit watermark payload into its fields."""
        return cls(value >> 28 & 0xF, value >> 12 & 0xFFFF, value & 0xFFF)

    def date(self, today: dt.date | None = None) -> dt.date:
        """The latest calendar day, not after today, whose stamp equals `day`."""
        today = today or dt.date.today()
        back = ((today - EPOCH).days - self.day) % 4096
        return today - dt.timedelta(days=back)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready fields, with the generator as 4 hex digits and the day as a date."""
        return {
            "version": self.version,
            "generator": f"{self.generator:04x}",
            "date": self.date().isoformat(),
            "this_install": self.generator == generator_id(),
        }


@dataclass
class ConsentRecord:
    """Evidence that a cloned voice was used with permission: hashes only, never the audio."""

    id: str
    time: str
    statement_sha256: str
    statement_source: str
    reference_sha256: str
    reference_seconds: float
    generator: str
    version: int = VERSION

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict of the record."""
        return asdict(self)


@dataclass
class Detection:
    """The verdict on one file or clip: marked or not, how sure, what it says and where."""

    marked: bool
    confidence: float
    score: float
    false_alarm: float
    duration: float
    payload: Payload | None = None
    ranges: list[tuple[float, float]] = field(default_factory=list)
    consent: dict[str, object] | None = None
    source: str | None = None
    note: str | None = None

    @property
    def verdict(self) -> str:
        """'marked' or 'not marked'."""
        return "marked" if self.marked else "not marked"

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict: verdict, confidence, z score, payload fields, ranges, consent."""
        return {
            "source": self.source,
            "verdict": self.verdict,
            "marked": self.marked,
            "confidence": round(self.confidence, 4),
            "score": round(self.score, 2),
            "false_alarm": float(f"{self.false_alarm:.3g}"),
            "duration": round(self.duration, 3),
            "payload": self.payload.to_dict() if self.payload else None,
            "ranges": [[round(a, 2), round(b, 2)] for a, b in self.ranges],
            "consent": self.consent,
            "note": self.note,
        }


def generator_id() -> int:
    """This install's 16-bit generator id, drawn at random once and kept in the cache folder."""
    path = cache_dir() / GENERATOR_FILE
    try:
        return int(path.read_text().strip(), 16) & 0xFFFF
    except (OSError, ValueError):
        pass
    value = secrets.randbelow(1 << 16)
    try:
        with atomic_path(path) as tmp:
            tmp.write_text(f"{value:04x}\n")
    except (OSError, AudioError):
        return value
    return int(path.read_text().strip(), 16) & 0xFFFF


def current_payload() -> Payload:
    """The payload `mark` embeds today: format version, this install's id, today's day stamp."""
    day = (dt.date.today() - EPOCH).days % 4096
    return Payload(VERSION, generator_id(), day)


def _span(audio: Audio, start: float | None, end: float | None) -> tuple[int, int]:
    for name, value in (("start", start), ("end", end)):
        if value is not None and not math.isfinite(value):
            raise InputError(f"mark {name} must be a number of seconds, got {value}")
    a = 0 if start is None else round(start * audio.rate)
    b = audio.frames if end is None else round(end * audio.rate)
    if a < 0 or b > audio.frames or a >= b:
        raise InputError(
            f"mark span [{start}, {end}) s is outside the audio (0-{audio.duration:.2f} s) or empty"
        )
    return a, b


def mark(audio: Audio, start: float | None = None, end: float | None = None) -> Audio:
    """A copy of `audio` carrying the inaudible provenance mark in [start, end) seconds.

    Samples outside the span are bit-identical to the input; the input is never modified.
    """
    check_samples(audio.samples, audio.rate)
    a, b = _span(audio, start, end)
    context = round(CONTEXT_S * audio.rate)
    lo, hi = max(0, a - context), min(audio.frames, b + context)
    mono = audio.samples[:, lo:hi].mean(axis=0)
    delta = watermark.embed(mono, audio.rate, current_payload().pack())[a - lo : b - lo]
    fade = min(round(FADE_S * audio.rate), (b - a) // 2)
    if fade > 0:
        ramp = np.linspace(0.0, 1.0, fade, endpoint=False, dtype=np.float32)
        delta[:fade] *= ramp
        delta[len(delta) - fade :] *= ramp[::-1]
    out = audio.samples.copy()
    out[:, a:b] += delta[None, :]
    return Audio(out, audio.rate)


def detect(audio_or_path: Audio | str | os.PathLike[str]) -> Detection:
    """Look for the provenance mark in audio or a file: verdict, confidence, payload, where, consent."""
    source = None
    consent = None
    if isinstance(audio_or_path, Audio):
        audio = audio_or_path
        check_samples(audio.samples, audio.rate)
    elif isinstance(audio_or_path, str | os.PathLike):
        source = os.fspath(audio_or_path)
        audio = load(source)
        consent = read_sidecar(source)
    else:
        raise InputError(f"detect takes audio or a file path, not {type(audio_or_path).__name__}")
    x16 = resample(audio.mono(), audio.rate, watermark.RATE)
    # Chase decoding over the 4 weakest bits, accepting only our format version: a wrong payload
    # then slips through at most ~1/256 of the times plain decoding fails.
    found = watermark.analyse(x16, accept=_known_version, flips=4)
    marked = found.z >= found.threshold
    # Logistic in the z score, 0.5 at the threshold (5 for clips up to 9 s): on a 3 s clip 3.7,
    # about the highest unmarked score measured, maps to 0.02 and 6.5 to 0.99. A heuristic scale.
    p_marked = 1.0 / (1.0 + math.exp(-3.0 * (found.z - found.threshold)))
    short = not marked and audio.duration < MIN_DETECT_S
    return Detection(
        marked=marked,
        confidence=p_marked if marked else 0.0 if short else 1.0 - p_marked,
        score=found.z,
        false_alarm=found.false_alarm,
        duration=audio.duration,
        payload=Payload.unpack(found.payload) if marked and found.payload is not None else None,
        ranges=[(s.start, s.end) for s in found.spans] if marked else [],
        consent=consent,
        source=source,
        note=f"too short to tell (under {MIN_DETECT_S:g} s)" if short else None,
    )


def _known_version(payload: int) -> bool:
    return Payload.unpack(payload).version == VERSION


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fingerprint(reference: Audio) -> str:
    """sha256 of the reference audio (rate, channels and float32 samples): exact, not perceptual."""
    h = hashlib.sha256()
    h.update(f"{reference.rate}:{reference.channels}:".encode())
    h.update(np.ascontiguousarray(reference.samples, dtype="<f4").tobytes())
    return h.hexdigest()


def require_consent(
    statement: str | None, consent_file: Path | None, reference: Audio
) -> ConsentRecord:
    """Refuse to clone without a consent statement; record its hash and the reference's in the ledger.

    The returned record goes beside the output (`write_sidecar`); the ledger is consent.jsonl in
    the cache folder.
    """
    texts: list[str] = []
    sources: list[str] = []
    if statement is not None and statement.strip():
        texts.append(statement.strip())
        sources.append("statement")
    if consent_file is not None:
        path = Path(consent_file)
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
            raise InputError(f"{path}: cannot read the consent file ({reason})") from None
        if not text:
            raise InputError(f"{path}: the consent file is empty")
        texts.append(text)
        sources.append(f"file:{path.name}")
    if not texts:
        raise InputError(
            'cloning a voice needs --consent "<statement>" or --consent-file FILE: '
            "the speaker's own permission to use their voice"
        )
    joined = "\n".join(texts)
    if len(joined) < MIN_STATEMENT:
        raise InputError(
            f"consent statement is too short ({len(joined)} characters): say who agrees to "
            "what, e.g. 'I, Ann Lee, agree to voicebox cloning my voice for the podcast'"
        )
    check_samples(reference.samples, reference.rate, "reference")
    record = ConsentRecord(
        id=uuid.uuid4().hex[:16],
        time=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        statement_sha256=_sha256_text(joined),
        statement_source="+".join(sources),
        reference_sha256=fingerprint(reference),
        reference_seconds=round(reference.duration, 3),
        generator=f"{generator_id():04x}",
    )
    line = json.dumps(record.to_dict(), sort_keys=True) + "\n"
    ledger = cache_dir() / LEDGER_FILE
    try:
        fd = os.open(ledger, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise InputError(f"{ledger}: cannot record consent ({exc.strerror})") from None
    return record


def ledger() -> list[ConsentRecord]:
    """Every consent record on this install, oldest first (unreadable lines are skipped)."""
    path = cache_dir() / LEDGER_FILE
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            records.append(ConsentRecord(**json.loads(line)))
        except (ValueError, TypeError):
            continue
    return records


def sidecar_path(output: str | os.PathLike[str]) -> Path:
    """Where the provenance record of `output` lives: `<output>.provenance.json`."""
    return Path(os.fspath(output) + SIDECAR_SUFFIX)


def write_sidecar(output: str | os.PathLike[str], consent: ConsentRecord | None = None) -> Path:
    """Write `<output>.provenance.json` (atomically): the mark's payload and any consent record."""
    data: dict[str, object] = {
        "watermark": {"key": watermark.KEY, "payload": current_payload().to_dict()},
        "consent": consent.to_dict() if consent else None,
    }
    path = sidecar_path(output)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def read_sidecar(output: str | os.PathLike[str]) -> dict[str, object] | None:
    """The consent record from `<output>.provenance.json`, marked `in_ledger` when this install
    recorded it; None when there is no readable sidecar or it holds no consent."""
    path = sidecar_path(output)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    consent = data.get("consent") if isinstance(data, dict) else None
    if not isinstance(consent, dict):
        return None
    ids = {r.id for r in ledger()}
    return {**consent, "in_ledger": consent.get("id") in ids}
