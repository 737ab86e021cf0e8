"""Request parameters for each task, and the job bodies that run them and write their results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from .. import audio as audio_io
from .. import provenance
from ..audio import Audio
from ..errors import AudioError, InputError, VoiceboxError
from ..options import TaskOptions, specs
from ..safety import refuse_overwrite
from ..tasks.options import (
    CleanOptions,
    EditOptions,
    ReadLikeOptions,
    ReadOptions,
    TranscribeOptions,
)
from .apierror import ApiError
from .backend import Backend
from .forms import Upload
from .jobs import Job, Result, Work
from .settings import Settings

SpeechFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]
AudioFormat = Literal[tuple(ext[1:] for ext in audio_io.WRITE_EXTS)]  # type: ignore[valid-type]
"""What clean and edit answer in: every format audio.save writes."""
TranscriptFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]
T = TypeVar("T", bound=TaskOptions)
PCM_RATE = 24_000  # OpenAI's pcm: 24 kHz, 16-bit signed little-endian, mono

MEDIA_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "ogg": "audio/ogg",
    "aac": "audio/aac",
    "m4a": "audio/mp4",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
    "json": "application/json",
    "verbose_json": "application/json",
    "text": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}


def request_model(
    name: str, options: type[TaskOptions], base: type[BaseModel], exclude: tuple[str, ...] = ()
) -> type[BaseModel]:
    """A request model: `base`'s own fields (OpenAI's, the response format) and one field per
    option of the task's dataclass, with its default, bounds and help, so the server takes
    what the task declares."""
    fields: dict[str, Any] = {}
    for spec in specs(options):
        if spec.name in exclude:
            continue
        kind = spec.server_type if spec.server_type is not None else spec.type
        info = Field(spec.default, ge=spec.ge, le=spec.le, description=spec.help)
        fields[spec.name] = (kind, info)
    return create_model(name, __base__=base, __doc__=base.__doc__, **fields)


def task_options(options: type[T], params: BaseModel) -> T:
    """The task's options from a validated request (400 for a value the task refuses)."""
    try:
        return options.from_mapping(params.model_dump(include=set(options.names())))
    except InputError as exc:
        raise ApiError(400, str(exc)) from None


class _Speech(BaseModel):
    """OpenAI's speech request, plus voice blends, pitch and language."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field("voicebox", description="Accepted for OpenAI compatibility (tts-1, ...).")
    input: str = Field(..., description="The text to read.")
    response_format: SpeechFormat = "mp3"
    stream: bool = Field(True, description="Stream wav/pcm sentence by sentence as they finish.")
    stream_format: Literal["audio", "sse"] = Field(
        "audio",
        description="sse: server-sent events, speech.audio.delta (base64 audio) per sentence, "
        "then speech.audio.done.",
    )
    instructions: str | None = Field(
        None,
        description="How to speak: rate and pitch phrases ('speak slowly', 'a lower pitch') are "
        "honoured; the rest is ignored and named in the X-Voicebox-Instructions header.",
    )


SpeechParams = request_model("SpeechParams", ReadOptions, _Speech)
"""The speech request: OpenAI's fields and read's options (voice, blend, speed, pitch, lang)."""


class _Clean(BaseModel):
    """How to clean an upload: denoiser, its strength (dB), hum removal and target loudness."""

    model_config = ConfigDict(extra="ignore")

    response_format: AudioFormat = "wav"


CleanParams = request_model("CleanParams", CleanOptions, _Clean)
"""The clean request: clean's options and the response format."""


class _Transcribe(BaseModel):
    """OpenAI's transcription (and translation) request; any of whisper's 99 languages."""

    model_config = ConfigDict(extra="ignore")

    model: str = "whisper-1"
    prompt: str | None = None
    response_format: TranscriptFormat = "json"
    temperature: float | None = None
    timestamp_granularities: list[Literal["word", "segment"]] = Field(default_factory=list)


TranscribeParams = request_model(
    "TranscribeParams", TranscribeOptions, _Transcribe, exclude=("translate",)
)
"""The transcription request; translating is its own route (/v1/audio/translations), as OpenAI's."""


class _Edit(BaseModel):
    """Word edits: a whole edited transcript, or replace / delete / insert-after operations."""

    model_config = ConfigDict(extra="ignore", validate_default=True)  # () defaults become []

    plan_only: bool = False
    source: dict | None = Field(
        None, description="The recording's transcript (a transcription job's info.transcript)."
    )
    consent: str | None = Field(
        None,
        description="The speaker's statement that they agree to our model speaking in their voice "
        "(engine auto or voicebox; with it, auto uses the model). A 'consent_audio' file of them "
        "reading it is checked.",
    )
    response_format: AudioFormat = "wav"


EditParams = request_model("EditParams", EditOptions, _Edit, exclude=("exclude_voices",))
"""The edit request: edit's options (the library-only exclude_voices aside) and the job's own."""


class _Clone(BaseModel):
    """Zero-shot reading: the text read in the voice of the uploaded 'reference' recording, with
    the speaker's consent (a 'consent_audio' clip of them reading it is checked)."""

    model_config = ConfigDict(extra="ignore")

    input: str = Field(..., description="The text to read.")
    consent: str | None = Field(
        None,
        description="Required: the reference speaker's statement that they agree to voicebox "
        "speaking in their voice. A 'consent_audio' file of them reading it is checked.",
    )
    language: str | None = Field(None, description="Another spelling of lang.")
    response_format: SpeechFormat = "mp3"

    @model_validator(mode="after")
    def _one_language(self) -> _Clone:
        """`language` (as transcription spells it) is taken for `lang` (as speech spells it)."""
        lang = getattr(self, "lang", None)
        if self.language and lang and self.language != lang:
            raise ValueError(f"lang '{lang}' and language '{self.language}' differ; give one")
        if self.language and not lang:
            self.lang = self.language
        return self


CloneParams = request_model("CloneParams", ReadLikeOptions, _Clone)
"""The clone request: read_like's options (seed, nfe, guidance, lang, reference_text), the text,
the consent and the response format; the reference and consent clip are uploads."""


def check_upload(kind: str, upload: Upload | None, field: str = "file") -> None:
    """A task on a recording needs one that is there and is audio: checked before accepting."""
    from ..audio import probe

    if upload is None:
        raise ApiError(
            400,
            f"task '{kind}' needs a recording: send multipart/form-data with a '{field}' field",
        )
    if upload.size == 0:
        raise ApiError(400, f"'{upload.filename}' is empty")
    try:
        probe(upload.path)
    except VoiceboxError as exc:
        raise ApiError(400, upload_message(exc, upload)) from None


def upload_message(exc: VoiceboxError, upload: Upload) -> str:
    """A library error about an upload, naming it as the client did (not our stored path)."""
    return str(exc).replace(str(upload.path), upload.filename or "upload")


def load_upload(upload: Upload | None, settings: Settings) -> Audio:
    """Decode an uploaded file, refusing audio longer than the server allows (413)."""
    if upload is None:
        raise ApiError(400, "no audio: send the recording in the 'file' field")
    if upload.size == 0:
        raise ApiError(400, f"'{upload.filename}' is empty")
    limit = settings.max_audio_seconds
    try:
        try:
            rate, _, frames = audio_io.info(upload.path)
            if frames / rate > limit:
                raise _too_long(frames / rate, limit)
        except AudioError:
            pass  # not a soundfile format: decode with ffmpeg below and check then
        audio = audio_io.load(upload.path)
    except AudioError as exc:
        raise ApiError(400, upload_message(exc, upload)) from None
    if audio.duration > limit:
        raise _too_long(audio.duration, limit)
    return audio


def _too_long(seconds: float, limit: float) -> ApiError:
    return ApiError(
        413, f"audio is {seconds:.0f} s long; this server accepts at most {limit:.0f} s"
    )


def check_text(text: str, settings: Settings) -> None:
    """Refuse empty text (400) and text over the length limit (413)."""
    if not text.strip():
        raise ApiError(400, "'input' is empty: give the text to read")
    if len(text) > settings.max_text_chars:
        raise ApiError(
            413,
            f"'input' has {len(text)} characters; this server reads at most "
            f"{settings.max_text_chars} per request",
        )


def write_audio(job: Job, audio: Audio, fmt: str, stem: str) -> Result:
    """Encode audio into the job's folder in the requested format."""
    if fmt == "pcm":
        data = openai_pcm(audio)
    else:
        data = audio_io.encode(audio, fmt)
    return write_bytes(job, data, fmt, f"{stem}.{fmt}")


def write_bytes(job: Job, data: bytes, fmt: str, filename: str) -> Result:
    path = job.folder / filename
    refuse_overwrite([path], job.inputs)  # a result never replaces the job's own upload
    with audio_io.atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return Result(path, MEDIA_TYPES[fmt], filename)


def pcm16(audio: Audio) -> bytes:
    """Mono 16-bit little-endian samples (the same encoder the CLI streams with)."""
    return audio_io.pcm16(audio.mono())


def openai_pcm(audio: Audio) -> bytes:
    """OpenAI's `pcm` response: mono 16-bit little-endian at 24 kHz."""
    return pcm16(audio.to_rate(PCM_RATE) if audio.rate != PCM_RATE else audio)


def speech_args(
    params: SpeechParams, backend: Backend
) -> tuple[str, str | None, dict[str, float] | None, float, float, str | None]:
    """The request as the backend's reading arguments: text, voice, blend, speed, pitch, lang;
    `instructions` scale the speed and shift the pitch where they name a rate or a pitch."""
    from .instructions import interpret

    voice = backend.voice_id(params.voice)
    asked = interpret(params.instructions)
    speed = float(np.clip(params.speed * asked.speed, 0.25, 4.0))  # SpeechParams' own bounds
    pitch = float(np.clip(params.pitch + asked.pitch, -12.0, 12.0))
    return params.input, voice, params.blend, speed, pitch, params.lang


def instruction_headers(params: SpeechParams) -> dict[str, str]:
    """The X-Voicebox-Instructions header saying what of the instructions was honoured."""
    from .instructions import HEADER, interpret

    note = interpret(params.instructions).note()
    return {HEADER: note} if note else {}


def speech_work(params: SpeechParams, backend: Backend) -> Work:
    """A job that reads the text in one piece and writes it in the requested format."""

    def run(job: Job) -> Result:
        audio = backend.speech(*speech_args(params, backend), job.progress)
        job.check_cancel()
        job.info["duration"] = round(audio.duration, 3)
        result = write_audio(job, audio, params.response_format, "speech")
        result.headers.update(instruction_headers(params))
        return result

    return run


class CaptionedParams(SpeechParams):
    """Kokoro-FastAPI's captioned speech: the speech request, answered as audio plus word times."""

    return_timestamps: bool = Field(True, description="Include each word's start and end times.")


def captioned_work(params: CaptionedParams, backend: Backend) -> Work:
    """A job that reads the text and answers one JSON document: the audio (base64, in the asked
    format) and the words with their start and end seconds (Kokoro-FastAPI's shape)."""
    import base64

    def run(job: Job) -> Result:
        audio, words = backend.captioned(*speech_args(params, backend), job.progress)
        job.check_cancel()
        fmt = params.response_format
        if fmt == "pcm":
            data = openai_pcm(audio)
        else:
            data = audio_io.encode(audio, fmt)
        doc: dict = {"audio": base64.b64encode(data).decode(), "audio_format": fmt}
        if params.return_timestamps:
            doc["timestamps"] = [
                {
                    "word": w["word"],
                    "start_time": round(w["start"], 3),
                    "end_time": round(w["end"], 3),
                }
                for w in words
            ]
        job.info["duration"] = round(audio.duration, 3)
        body = json.dumps(doc, ensure_ascii=False).encode("utf-8")
        result = write_bytes(job, body, "json", "captioned_speech.json")
        result.headers.update(instruction_headers(params))
        return result

    return run


def clean_work(
    params: CleanParams, upload: Upload | None, settings: Settings, backend: Backend
) -> Work:
    """A job that cleans the uploaded recording (its options checked before it is accepted)."""
    options = task_options(CleanOptions, params)

    def run(job: Job) -> Result:
        audio = load_upload(upload, settings)
        job.progress(0.0, audio.duration)
        cleaned = backend.clean(audio, options, job.progress)
        job.check_cancel()
        job.info["duration"] = round(cleaned.duration, 3)
        return write_audio(job, cleaned, params.response_format, "clean")

    return run


def transcribe_work(
    params: TranscribeParams,
    upload: Upload | None,
    settings: Settings,
    backend: Backend,
    task: str = "transcribe",
) -> Work:
    """A job that transcribes (or translates to English) the upload and renders it as OpenAI's
    response formats do; an unknown language is refused now (400), not after the upload is read."""
    from .backend import available

    with available("transcribe"):
        from ..tasks.transcribe import check_language
    try:
        language = check_language(params.language)
    except InputError as exc:
        raise ApiError(400, str(exc).replace("--language CODE", "language=CODE")) from None

    def run(job: Job) -> Result:
        audio = load_upload(upload, settings)
        job.progress(0.0, audio.duration)
        transcript = backend.transcribe(audio, job.progress, language=language, task=task)
        job.check_cancel()
        fmt = params.response_format
        data = transcript.to_dict()
        if fmt == "json":
            body: str = json.dumps({"text": data["text"]}, ensure_ascii=False)
        elif fmt == "verbose_json":
            body = json.dumps(
                verbose_json(data, params.timestamp_granularities, task), ensure_ascii=False
            )
        elif fmt == "text":
            body = data["text"] + "\n"
        else:
            body = transcript.render(fmt)
        job.info["text"] = data["text"]
        job.info["language"] = data.get("language", language or "en")
        job.info["transcript"] = data
        return write_bytes(job, body.encode("utf-8"), fmt, f"transcript.{_suffix(fmt)}")

    return run


def _suffix(fmt: str) -> str:
    return {"text": "txt", "verbose_json": "json"}.get(fmt, fmt)


def verbose_json(data: dict, granularities: list[str], task: str = "transcribe") -> dict:
    """OpenAI's verbose_json: segments always, words when 'word' granularity was asked for; the
    language is named as OpenAI names it ("german"), its detection probability beside it."""
    from ..engines.asr import LANGUAGE_NAMES

    code = data.get("language") or "en"
    out: dict = {
        "task": task,
        "language": LANGUAGE_NAMES.get(code, code),
        "language_probability": data.get("language_probability"),
        "duration": data["duration"],
        "text": data["text"],
        "segments": [
            {"id": i, "start": s["start"], "end": s["end"], "text": s["text"]}
            for i, s in enumerate(data["segments"])
        ],
    }
    if "word" in granularities:
        out["words"] = [
            {
                "word": w["text"],
                "start": w["start"],
                "end": w["end"],
                "probability": w["probability"],
            }
            for s in data["segments"]
            for w in s["words"]
        ]
    return out


def edit_work(
    params: EditParams,
    upload: Upload | None,
    settings: Settings,
    backend: Backend,
    consent_audio: Upload | None = None,
) -> Work:
    """A job that edits the upload's words; the plan is kept in the job's info.

    With engine=voicebox the model speaks in the recorded voice: refused (403) without the
    speaker's consent statement, 422 when it is unusable; checked before the job is accepted.
    """
    try:  # the task's own checks, in the words the CLI and batch use
        options = task_options(EditOptions, params).require_ops()
    except InputError as exc:
        raise ApiError(400, str(exc)) from None
    from ..tasks.edit import chosen_engine

    given = bool(params.consent) or consent_audio is not None
    if options.engine == "stock" and given:
        raise ApiError(
            400, "'consent' and 'consent_audio' go with our model (engine auto or voicebox)"
        )
    engine = chosen_engine(options.engine, given)
    params = params.model_copy(update={"engine": engine})
    cloning = engine == "voicebox" and not params.plan_only
    if cloning:
        check_consent(params.consent, consent_audio, "engine=voicebox speaks in the recorded")

    def run(job: Job) -> Result:
        audio = load_upload(upload, settings)
        consent = None
        if cloning:
            consent = speaker_consent(params.consent, consent_audio, settings)
        job.progress(0.0, 1.0)
        result = backend.edit(audio, params, job.progress, consent=consent)
        job.check_cancel()
        job.info["plan"] = jsonable(result.plan)
        if params.plan_only or result.audio is None:
            body = json.dumps({"plan": job.info["plan"]}, ensure_ascii=False)
            return write_bytes(job, body.encode("utf-8"), "json", "plan.json")
        job.info["duration"] = round(result.audio.duration, 3)
        out = write_audio(job, result.audio, params.response_format, "edit")
        return record_consent(job, out, getattr(result, "consent", None))

    return run


def clone_work(
    params: CloneParams,  # type: ignore[valid-type]
    reference: Upload | None,
    settings: Settings,
    backend: Backend,
    consent_audio: Upload | None = None,
) -> Work:
    """A job that reads the text in the voice of the uploaded reference (read_like): English by
    our model, another language re-voiced. Refused before it is accepted without the speaker's
    consent (403), with an unusable one (422), a bad text, language or upload (400), or no
    trained model (503); a silent reference is refused (400) before any model work."""
    check_text(params.input, settings)
    check_consent(params.consent, consent_audio, "this route speaks in the reference")
    options = task_options(ReadLikeOptions, params)
    try:
        lang = backend.clone_language(params.input, options.lang)
    except InputError as exc:
        said = str(exc).replace("without --like (--voice ", "through /v1/audio/speech (voice=")
        raise ApiError(400, said) from None
    check_upload("clone", reference, "reference")

    def run(job: Job) -> Result:
        from ..safety import accept_reference

        assert reference is not None
        try:  # refuses silence, trims a long one to its best 10 s: fast, before the model
            accepted = accept_reference(reference.path, options.reference_text)
        except VoiceboxError as exc:
            raise ApiError(400, upload_message(exc, reference)) from None
        consent = speaker_consent(params.consent, consent_audio, settings)
        job.progress(0.0, 1.0)
        asked = {**options.to_dict(), "reference_text": accepted.text, "lang": lang}
        speech = backend.clone(params.input, accepted.audio, asked, job.progress, consent)
        job.check_cancel()
        job.info["duration"] = round(speech.audio.duration, 3)
        if accepted.window is not None:
            job.info["reference_window"] = list(accepted.window)
        out = write_audio(job, speech.audio, params.response_format, "clone")
        if speech.route:  # how another language was read: the native voice, warp and pitch
            job.info["route"] = speech.route
            out.headers["X-Voicebox-Route"] = speech.route
        return record_consent(job, out, speech.consent)

    return run


def check_consent(statement: str | None, clip: Upload | None, speaks: str) -> None:
    """Before accepting work that speaks in a person's voice (`speaks`: what does, and in whose
    voice): 403 without their consent statement, 422 when it cannot be used (too short, an
    empty clip). The library checks it again, and records it, when the voice is used."""
    if not (statement and statement.strip()):
        raise ApiError(
            403,
            f"{speaks} person's voice: send 'consent', their statement that they agree "
            "(and optionally 'consent_audio', a clip of them saying it)",
        )
    if clip is not None and clip.size == 0:
        raise ApiError(422, f"consent_audio '{clip.filename}' is empty")
    try:
        provenance.check_consent(provenance.Consent(statement))
    except InputError as exc:
        raise ApiError(422, str(exc)) from None


def speaker_consent(
    statement: str | None, clip: Upload | None, settings: Settings
) -> provenance.Consent:
    """The consent a job hands the library: the statement, and the decoded spoken clip if sent."""
    audio = load_upload(clip, settings) if clip is not None else None
    return provenance.Consent(statement, None, audio)


def record_consent(job: Job, result: Result, record: provenance.ConsentRecord | None) -> Result:
    """Put the consent record the library wrote to the ledger beside the result
    (`<result>.provenance.json`), in the job's info and in the X-Voicebox-Consent header."""
    if record is not None:
        provenance.write_sidecar(result.path, record)
        job.info["consent"] = record.to_dict()
        result.headers["X-Voicebox-Consent"] = record.id
    return result


def jsonable(value: object) -> object:
    """A plan object as plain JSON values (dataclasses, lists, dicts, numbers, strings)."""
    import dataclasses

    if hasattr(value, "to_dict"):
        return jsonable(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
