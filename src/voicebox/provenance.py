"""Provenance: mark generated speech, detect the mark, and record consent for cloned voices.

`mark` hides a 32-bit payload (format version, this install's generator id, the day) in the
audio with voicebox.watermark; `detect` finds it in any file or crop and reports where.
Consent lives here, not in the front ends: every task that speaks in another person's voice
(zero-shot reading, model edits, model infill of a recording) takes a required `Consent` and calls
`grant`, which refuses without a statement, checks a spoken consent clip when one is given (whisper
hears the statement, the speaker embedding matches the reference), and records hashes of the
statement and the reference, and the spoken scores, in a local ledger (consent.jsonl in the cache
folder). Writers put the record beside their output as `<output>.provenance.json`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import re
import secrets
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import watermark
from .audio import Audio, atomic_path, check_samples, load, resample, stream_mono
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
SPOKEN_MAX_WER = 0.3
"""A spoken consent clip must say the statement with at most this word error rate (whisper's).
Measured (bench/consent.py): a different statement scores 0.8 or more; whisper tiny.en on hard
read speech (LibriSpeech test-other) goes past 0.25 on 12 % of genuine clips, past 0.3 on 8 %."""
SPOKEN_MIN_SIMILARITY = 0.75
"""...in a voice at least this close (resemblyzer cosine) to the reference. Measured on 22 real
speakers: same speaker refused 2.9 %, another speaker accepted 0.35 % (0.7: 0.7 % / 2.0 %)."""
SPOKEN_MAX_S = 60.0
SIDECAR_SUFFIX = ".provenance.json"
GENERATOR_FILE = "generator-id"
LEDGER_FILE = "consent.jsonl"
MARK_CEILING = 0.99
"""Peak the mark may bring a sample to (where the audio itself stays below it)."""


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
    spoken: dict[str, object] | None = None
    """Spoken consent: word error rate and voice similarity of the clip, its thresholds and hash."""

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict of the record."""
        return asdict(self)


@dataclass(frozen=True)
class Consent:
    """A speaker's permission to speak in their voice: their statement (text and/or a UTF-8 file),
    and optionally a clip of them saying it (`audio`: Audio or a file), checked by `grant`."""

    statement: str | None = None
    file: str | os.PathLike[str] | None = None
    audio: Audio | str | os.PathLike[str] | None = None

    def __bool__(self) -> bool:
        return bool((self.statement and self.statement.strip()) or self.file is not None)


ConsentLike = Consent | ConsentRecord


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
    generated: dict[str, object] | None = None
    """The edit record from the sidecar: the generated ranges and whether the file is unchanged."""

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
            "generated": self.generated,
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
    # The mark must not push speech over full scale (Piper's 0.9-peak sentences reached 1.07 and
    # clipped when written): a whole clip is turned down to its own peak or MARK_CEILING, whichever
    # is higher (a gain leaves the mark whole); a span inside a recording, whose surroundings must
    # stay bit-exact, is clipped there instead (clipping weakens the mark, so only where it must).
    ceiling = max(MARK_CEILING, float(np.abs(audio.samples[:, a:b]).max(initial=0.0)))
    peak = float(np.abs(out[:, a:b]).max(initial=0.0))
    if peak > ceiling and start is None and end is None:
        out *= ceiling / peak
    elif peak > ceiling:
        np.clip(out[:, a:b], -ceiling, ceiling, out=out[:, a:b])
    return Audio(out, audio.rate)


def detect(audio_or_path: Audio | str | os.PathLike[str]) -> Detection:
    """Look for the provenance mark in audio or a file: verdict, confidence, payload, where, consent."""
    source = None
    consent = generated = None
    # Chase decoding over the 4 weakest bits, accepting only our format version: a wrong payload
    # then slips through at most ~1/256 of the times plain decoding fails.
    if isinstance(audio_or_path, Audio):
        audio = audio_or_path
        check_samples(audio.samples, audio.rate)
        x16 = resample(audio.mono(), audio.rate, watermark.RATE)
        found = watermark.analyse(x16, accept=_known_version, flips=4)
        duration = audio.duration
    elif isinstance(audio_or_path, str | os.PathLike):
        source = os.fspath(audio_or_path)
        # A file is read, resampled and searched piece by piece: bounded memory at any length.
        expected, blocks = stream_mono(source, watermark.RATE)
        found, duration = watermark.analyse_blocks(blocks, expected, accept=_known_version, flips=4)
        consent = read_sidecar(source)
        generated = read_generated(source)
    else:
        raise InputError(f"detect takes audio or a file path, not {type(audio_or_path).__name__}")
    marked = found.z >= found.threshold
    # Logistic in the z score, 0.5 at the threshold (5 for clips up to 9 s): on a 3 s clip 3.7,
    # about the highest unmarked score measured, maps to 0.02 and 6.5 to 0.99. A heuristic scale.
    p_marked = 1.0 / (1.0 + math.exp(-3.0 * (found.z - found.threshold)))
    short = not marked and duration < MIN_DETECT_S
    return Detection(
        marked=marked,
        confidence=p_marked if marked else 0.0 if short else 1.0 - p_marked,
        score=found.z,
        false_alarm=found.false_alarm,
        duration=duration,
        payload=Payload.unpack(found.payload) if marked and found.payload is not None else None,
        ranges=[(s.start, s.end) for s in found.spans] if marked else [],
        consent=consent,
        source=source,
        note=f"too short to tell (under {MIN_DETECT_S:g} s)" if short else None,
        generated=generated,
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
    """Refuse to clone without a consent statement; record its hash and the reference's in the
    ledger (`grant` with a written statement only)."""
    return grant(Consent(statement, consent_file), reference)


NEEDS_CONSENT = (
    'speaking in another person\'s voice needs their consent: --consent "<statement>" or '
    "--consent-file FILE (optionally --consent-audio CLIP of them saying it)"
)


def statement_of(consent: ConsentLike | None) -> tuple[str, str]:
    """(statement, where it came from) of a consent, checked without recording anything: cheap,
    so front ends call it (via `check_consent`) before any heavy work."""
    if consent is None or (isinstance(consent, Consent) and not consent):
        raise InputError(NEEDS_CONSENT)
    if isinstance(consent, ConsentRecord):
        return "", consent.statement_source
    if not isinstance(consent, Consent):
        raise InputError(f"consent must be a voicebox Consent, not {type(consent).__name__}")
    texts: list[str] = []
    sources: list[str] = []
    if consent.statement is not None and consent.statement.strip():
        texts.append(consent.statement.strip())
        sources.append("statement")
    if consent.file is not None:
        path = Path(consent.file)
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
            raise InputError(f"{path}: cannot read the consent file ({reason})") from None
        if not text:
            raise InputError(f"{path}: the consent file is empty")
        texts.append(text)
        sources.append(f"file:{path.name}")
    joined = "\n".join(texts)
    if len(joined) < MIN_STATEMENT:
        raise InputError(
            f"consent statement is too short ({len(joined)} characters): say who agrees to "
            "what, e.g. 'I, Ann Lee, agree to voicebox cloning my voice for the podcast'"
        )
    if consent.audio is not None and not isinstance(consent.audio, Audio):
        clip = Path(consent.audio)
        if not clip.is_file():
            raise InputError(f"{clip}: no such consent clip")
        sources.append(f"spoken:{clip.name}")
    elif consent.audio is not None:
        sources.append("spoken")
    return joined, "+".join(sources)


def check_consent(consent: ConsentLike | None) -> None:
    """Raise InputError unless `consent` is usable (statement present and long enough, files
    readable); records nothing, so it is safe to call first thing."""
    statement_of(consent)


def grant(consent: ConsentLike | None, reference: Audio) -> ConsentRecord:
    """The consent record for speaking in `reference`'s voice, appended to the ledger.

    Call it once the reference has been accepted and just before the model speaks. A spoken
    consent clip is checked first (InputError when whisper does not hear the statement or the
    voice is not the reference's). A ConsentRecord from an earlier call is reused when it was
    made for this same reference.
    """
    statement, source = statement_of(consent)
    check_samples(reference.samples, reference.rate, "reference")
    if isinstance(consent, ConsentRecord):
        if consent.reference_sha256 != fingerprint(reference):
            raise InputError(
                f"consent record {consent.id} was made for another recording; give the consent again"
            )
        return consent
    assert isinstance(consent, Consent)
    spoken = None
    if consent.audio is not None:
        spoken = verify_spoken(statement, consent.audio, reference)
    record = ConsentRecord(
        id=uuid.uuid4().hex[:16],
        time=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        statement_sha256=_sha256_text(statement),
        statement_source=source,
        reference_sha256=fingerprint(reference),
        reference_seconds=round(reference.duration, 3),
        generator=f"{generator_id():04x}",
        spoken=spoken,
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


# ---------------------------------------------------------------- spoken consent


def words_of(text: str) -> list[str]:
    """Comparable words: numbers spelled out, lower case, letters and apostrophes only."""
    from .text import normalize

    try:
        text = normalize(text, "en")
    except Exception:  # noqa: BLE001 - spelling numbers out is a nicety here
        pass
    text = text.lower().replace("\u2019", "'").replace("-", " ")
    return [w.strip("'") for w in re.sub(r"[^a-z' ]+", " ", text).split() if w.strip("'")]


def word_error_rate(reference: str, heard: str) -> float:
    """Word error rate of `heard` against `reference` (edits / reference words; 1.0 if empty)."""
    ref, hyp = words_of(reference), words_of(heard)
    if not ref:
        return 0.0 if not hyp else 1.0
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / len(ref)


def spoken_scores(statement: str, clip: Audio, reference: Audio) -> dict[str, float]:
    """How well `clip` says `statement` (whisper's WER) in `reference`'s voice (embedding cosine)."""
    from .engines import speaker
    from .engines.asr import transcribe_text
    from .safety import voice_sample

    heard = transcribe_text(clip)
    similarity = speaker.similarity(voice_sample(clip), voice_sample(reference))
    return {
        "wer": round(word_error_rate(statement, heard), 4),
        "similarity": round(similarity, 4),
    }


def verify_spoken(
    statement: str, clip: Audio | str | os.PathLike[str], reference: Audio
) -> dict[str, object]:
    """Check a spoken consent clip (InputError when it fails); its scores for the record."""
    from .safety import FRAME_S, speech_mask

    name = "consent clip" if isinstance(clip, Audio) else os.fspath(clip)
    audio = clip if isinstance(clip, Audio) else load(clip)
    check_samples(audio.samples, audio.rate, name)
    if audio.duration > SPOKEN_MAX_S:
        raise InputError(
            f"{name}: is {audio.duration:.0f} s; a spoken consent is the statement read aloud "
            f"(at most {SPOKEN_MAX_S:.0f} s)"
        )
    speech = float(speech_mask(resample(audio.mono(), audio.rate, 16000)).sum() * FRAME_S)
    if speech < 1.0:
        raise InputError(
            f"{name}: holds no speech ({speech:.1f} s); record the statement read aloud"
        )
    scores = spoken_scores(statement, audio, reference)
    # The voice first: a clip in someone else's voice is refused for that, whatever it says.
    if scores["similarity"] < SPOKEN_MIN_SIMILARITY:
        raise InputError(
            f"{name}: the voice is not the reference speaker's (similarity "
            f"{scores['similarity']:.2f}, needs {SPOKEN_MIN_SIMILARITY:g}); the person whose voice "
            "is used must record the consent"
        )
    if scores["wer"] > SPOKEN_MAX_WER:
        raise InputError(
            f"{name}: does not say the consent statement (word error rate {scores['wer']:.2f}, "
            f"at most {SPOKEN_MAX_WER:g}); record the speaker reading exactly that statement"
        )
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(audio.samples, dtype="<f4").tobytes())
    return {
        **scores,
        "max_wer": SPOKEN_MAX_WER,
        "min_similarity": SPOKEN_MIN_SIMILARITY,
        "clip_sha256": h.hexdigest(),
        "clip_seconds": round(audio.duration, 3),
    }


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


def write_sidecar(
    output: str | os.PathLike[str],
    consent: ConsentRecord | None = None,
    generated: list[tuple[float, float]] | None = None,
) -> Path:
    """Write `<output>.provenance.json` (atomically): the mark's payload, any consent record and the
    `generated` time ranges (seconds) of an edit, with the output file's sha256.

    The ranges make short edits traceable: a span under about a second holds too few watermark
    tiles for `detect` to find the mark, but the record names it as long as the file is unchanged.
    """
    data: dict[str, object] = {
        "watermark": {"key": watermark.KEY, "payload": current_payload().to_dict()},
        "consent": consent.to_dict() if consent else None,
    }
    if generated:
        data["generated"] = {
            "ranges": [[round(a, 3), round(b, 3)] for a, b in generated],
            "file_sha256": _sha256_file(Path(output)),
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


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_generated(output: str | os.PathLike[str]) -> dict[str, object] | None:
    """The generated ranges recorded beside `output` by an edit, with `file_unchanged` (the file's
    sha256 still matches the record); None when the sidecar is missing or records no ranges."""
    try:
        data = json.loads(sidecar_path(output).read_text(encoding="utf-8"))
        record = data["generated"]
        ranges = [(float(a), float(b)) for a, b in record["ranges"]]
        digest = str(record["file_sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        unchanged = _sha256_file(Path(output)) == digest
    except OSError:
        unchanged = False
    return {"ranges": [[a, b] for a, b in ranges], "file_unchanged": unchanged}
