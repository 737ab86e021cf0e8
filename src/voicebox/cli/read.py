"""`voicebox read` (text to speech, streamed sentence by sentence) and `voicebox voices`."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import typer

from .. import audio as audio_io
from ..audio import pcm16, wav_stream_header  # the one streamed-WAV writer (server's too)
from ..errors import InputError
from ..tasks.options import ReadLikeOptions, ReadOptions
from .app import app, err, progress_bar, task_options

SUBTITLE_FORMATS = (".srt", ".vtt")
PREVIEW_TEXT = {
    "en": "Hello! This is how I sound when I read your text aloud.",
    "ja": "こんにちは。この声で文章を読み上げます。",
}


@app.command()
@task_options(ReadLikeOptions, exclude=("lang", "speed", "pitch"), into="like_options")
@task_options(ReadOptions)
def read(
    text: str | None = typer.Argument(None, help="Text to read; '-' reads standard input."),
    file: Path | None = typer.Option(None, "-f", "--file", help="Read the text of this file."),
    out: str = typer.Option(..., "-o", "--output", help="Audio file to write; '-' streams WAV."),
    options: ReadOptions = None,  # type: ignore[assignment] - read's own flags, see task_options
    loudness: float | None = typer.Option(
        None,
        "--loudness",
        help="Level to this EBU R128 loudness in LUFS (e.g. -16), true peak under -1 dBTP; "
        "the audio is then written once the whole text is read.",
    ),
    subtitles: Path | None = typer.Option(None, "--subtitles", help="Write .srt or .vtt here."),
    timings: Path | None = typer.Option(None, "--timings", help="Write word timings JSON here."),
    engine: str | None = typer.Option(
        None,
        "--engine",
        help="stock (bundled voices) or voicebox (our model; the default with --like).",
    ),
    like: Path | None = typer.Option(
        None,
        "--like",
        help="Speak in the voice of this 3-10 s recording (English: our Voicebox model; other "
        "languages: their nearest native voice re-voiced towards it; needs --consent).",
    ),
    like_options: ReadLikeOptions = None,  # type: ignore[assignment] - --ref-text, --seed, --nfe, ...
    variations: int = typer.Option(
        1, "--variations", help="With --engine voicebox: write N renditions as OUT-1 ... OUT-N."
    ),
    consent: str | None = typer.Option(
        None, "--consent", help="With --like: the speaker's own statement that they agree."
    ),
    consent_file: Path | None = typer.Option(
        None, "--consent-file", help="With --like: a text file holding that statement."
    ),
    consent_audio: Path | None = typer.Option(
        None,
        "--consent-audio",
        help="With --like: a clip of the speaker reading that statement (words and voice checked).",
    ),
) -> None:
    """Read text aloud; audio is written sentence by sentence as it is made."""
    from ..safety import refuse_overwrite
    from ..tasks.read import ENGINES

    source = _source(text, file)
    _check_outputs(out, subtitles, timings)
    refuse_overwrite([out, subtitles, timings], [file, like, consent_file, consent_audio])
    if engine is None:  # a reference voice means our model: it measures nearer the speaker
        engine = "voicebox" if like is not None else "stock"
    if engine not in ENGINES:
        raise InputError(f"unknown engine '{engine}'; use one of {', '.join(ENGINES)}")
    if engine == "voicebox":
        if options.voice is not None or options.blend is not None:
            raise InputError("--voice and --blend pick a bundled voice; --like reads in REF's own")
        _read_like(
            source,
            out,
            subtitles,
            timings,
            like,
            replace(like_options, speed=options.speed, pitch=options.pitch),
            variations,
            (consent, consent_file, consent_audio),
            lang=options.lang,
            loudness=loudness,
        )
        return
    if consent is not None or consent_file is not None or consent_audio is not None:
        raise InputError("--consent, --consent-file and --consent-audio go with --engine voicebox")
    if like is not None or like_options.reference_text is not None or variations != 1:
        raise InputError("--like, --ref-text and --variations need --engine voicebox")
    _read_stock(source, file, out, options, loudness, subtitles, timings)


def _read_stock(
    source: str | Iterator[str],
    file: Path | None,
    out: str,
    options: ReadOptions,
    loudness: float | None,
    subtitles: Path | None,
    timings: Path | None,
) -> None:
    """`read` with the bundled voices: streamed sentence by sentence into OUT (or stdout), with
    subtitles and timings committed together with the audio."""
    from ..tasks.read import (
        choose_voice,
        count_pieces,
        peek_text,
        read_stream,
        reading_report,
        timings_json,
        to_srt,
        to_vtt,
    )

    lang = options.lang
    sample, source = peek_text(source)
    _, name, spoken = choose_voice(options.voice, options.blend, lang, sample)
    report = reading_report(name, spoken, lang)
    if report:
        err.print(report, highlight=False)
    # Text and a file are known before reading: count their sentences so the bar moves with them
    # (standard input is not: the bar then counts without a total).
    if file is not None:
        known = count_pieces(_file_lines(file), spoken)
    else:
        known = count_pieces(source, spoken) if isinstance(source, str) else 0
    collected: list = []
    leveller = None
    if loudness is not None:  # checked before any synthesis; spooled beside the output
        from ..dsp import StreamLeveller

        folder = None if out == "-" else str(Path(out).parent)
        leveller = StreamLeveller(loudness, folder)
    with progress_bar("reading", unit="sentences", total=known) as bar:

        def tick(done: float, total: float) -> None:
            bar(done, max(known, done) if known else 0)

        asked = {**options.to_dict(), "lang": spoken}
        stream = read_stream(source, **asked, progress=tick)
        if leveller is not None:
            stream = _levelled(stream, leveller, collected)
        # Every output is committed together or not at all: a subtitle file that cannot be
        # written leaves no audio behind either.
        with audio_io.Outputs() as outputs:
            rate, duration = _write(stream, out, collected, outputs)
            if subtitles is not None:
                render = to_srt if subtitles.suffix.lower() == ".srt" else to_vtt
                outputs.reserve(subtitles).write_text(render(collected), encoding="utf-8")
            if timings is not None:
                measured = asdict(leveller.result) if leveller and leveller.result else None
                text = timings_json(collected, name, rate, duration, measured)
                outputs.reserve(timings).write_text(text, encoding="utf-8")
    got = leveller.result if leveller is not None else None
    if got is not None and got.loudness is not None and got.true_peak is not None:
        err.print(
            f"{'stdout' if out == '-' else out}: loudness {got.loudness:.1f} LUFS "
            f"(asked {loudness:g}), true peak {got.true_peak:.1f} dBTP",
            highlight=False,
        )


def _levelled(stream: Iterator, leveller: object, collected: list) -> Iterator:
    """The reading levelled to its loudness target: spooled whole (timings kept as they come),
    then replayed as levelled chunks that carry no timing of their own."""
    from ..audio import Audio
    from ..dsp import StreamLeveller

    assert isinstance(leveller, StreamLeveller)
    try:
        rate = 0
        for chunk, timing in stream:
            rate = chunk.rate
            leveller.spool(chunk.samples, rate)
            collected.append(timing)
        for block in leveller.replay():
            yield Audio(block, rate), None
    finally:
        leveller.close()


def _read_like(
    source: str | Iterator[str],
    out: str,
    subtitles: Path | None,
    timings: Path | None,
    like: Path | None,
    opts: ReadLikeOptions,
    variations: int,
    consent: tuple[str | None, Path | None, Path | None] = (None, None, None),
    lang: str | None = None,
    loudness: float | None = None,
) -> None:
    """`read --engine voicebox --like REF`: zero-shot reading in REF's voice, N variations;
    text in another language than English is read by its nearest native voice re-voiced.
    `loudness` levels each reading (LUFS, true peak under -1 dBTP) before it is written."""
    from .. import provenance
    from ..audio import atomic_path
    from ..dsp import check_target
    from ..model.checkpoint import find
    from ..safety import accept_reference, refuse_overwrite
    from ..tasks.crosslingual import route_language
    from ..tasks.read import read_like, variation_paths

    if like is None:
        raise InputError("--engine voicebox reads in the voice of a recording: add --like REF.wav")
    if out == "-":
        raise InputError("--engine voicebox writes files; give -o OUT.wav")
    if not 1 <= variations <= 16:
        raise InputError("--variations must be between 1 and 16")
    if loudness is not None:
        check_target(loudness)
    paths = variation_paths(out, variations)
    subs = variation_paths(str(subtitles), variations) if subtitles is not None else None
    times = variation_paths(str(timings), variations) if timings is not None else None
    refuse_overwrite([*paths, *(subs or []), *(times or [])], [like, *consent[1:]])
    text = source if isinstance(source, str) else "".join(source)
    target = route_language(text, lang)  # a language a recording's voice can speak, or refused
    if target != "en" and variations != 1:
        raise InputError("--variations needs English text: other languages read the same each time")
    if target == "en":
        find(None, "audio")  # NotReadyError (one line) when no model is trained, before any work
    # Cloning needs the speaker's consent: checked now, recorded once the reference is accepted.
    granted: provenance.Consent | provenance.ConsentRecord = provenance.Consent(*consent)
    provenance.check_consent(granted)
    reference = accept_reference(like, opts.reference_text)  # refuses silence, trims a long one
    if reference.window is not None:
        err.print(reference.describe(), highlight=False)
    base = opts.seed
    if base is None and variations > 1:
        import random

        base = random.randrange(2**30)
    for i, path in enumerate(paths):
        with progress_bar(f"reading like {like.name} ({i + 1}/{len(paths)})", "items") as bar:
            speech = read_like(
                text,
                reference.audio,
                reference.text,
                seed=None if base is None else base + 1000 * i,
                nfe=opts.nfe,
                guidance=opts.guidance,
                progress=bar,
                consent=granted,
                lang=target,
                speed=opts.speed,
                pitch=opts.pitch,
            )
        if speech.route:
            err.print(speech.route, highlight=False)
        if loudness is not None:
            from ..audio import Audio
            from ..dsp import level

            levelled, got = level(speech.audio.samples, speech.audio.rate, loudness)
            speech.audio = Audio(levelled, speech.audio.rate)
            if got.loudness is not None:
                err.print(
                    f"{path}: loudness {got.loudness:.1f} LUFS (asked {loudness:g})",
                    highlight=False,
                )
        granted = speech.consent or granted  # one ledger record for every variation
        speech.save(path)  # the audio and its provenance sidecar with the consent record
        if subs is not None:
            render = speech.to_srt if subs[i].lower().endswith(".srt") else speech.to_vtt
            with atomic_path(subs[i]) as tmp:
                tmp.write_text(render(), encoding="utf-8")
        if times is not None:
            with atomic_path(times[i]) as tmp:
                tmp.write_text(speech.to_json(), encoding="utf-8")
        err.print(f"wrote {path}", highlight=False)


def _source(text: str | None, file: Path | None) -> str | Iterator[str]:
    """The text to read: the argument, a file's lines or standard input's lines."""
    if text is not None and file is not None:
        raise InputError("give the text or -f FILE, not both")
    if file is not None:
        return _file_lines(file)
    if text == "-":
        return iter(sys.stdin)
    if text is None:
        raise InputError("nothing to read: give TEXT, -f FILE, or '-' for standard input")
    return text


LINE_CHARS = 65_536
"""A text file is handed on in pieces of at most this many characters, so one enormous line
(a 1 MB file without line breaks) still streams."""


def _file_lines(path: Path) -> Iterator[str]:
    """The lines of a text file (UTF-8, or UTF-16 with or without a byte-order mark), lazily."""
    import errno
    import os

    try:
        if path.is_dir():
            raise InputError(f"{path}: is a directory, not a text file")
        with open(path, "rb") as f:
            head = f.read(8192)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(f"{path}: symlink loop (the link leads back to itself)") from None
        if exc.errno == errno.ENOENT:
            raise InputError(f"{path}: no such file") from None
        raise InputError(audio_io.os_error_message(exc, path)) from None
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: permission denied (the file is not readable)")
    encoding = _text_encoding(head)
    if encoding is None:
        raise InputError(f"{path}: looks like a binary file, not text")

    def lines() -> Iterator[str]:
        with open(path, encoding=encoding, errors="replace") as f:
            while line := f.readline(LINE_CHARS):
                yield line

    return lines()


def _text_encoding(head: bytes) -> str | None:
    """The encoding of a text file from its first bytes; None when it looks binary."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if b"\x00" not in head:
        return "utf-8-sig"
    even, odd = head[0::2], head[1::2]
    if len(head) >= 4 and odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"  # ASCII-range text in UTF-16 without a byte-order mark
    if len(head) >= 4 and even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def _check_outputs(out: str, subtitles: Path | None, timings: Path | None) -> None:
    """Refuse unusable output paths before any synthesis starts."""
    from ..audio import WRITE_EXTS, ext_list

    if out != "-":
        ext = Path(out).suffix.lower()
        if ext not in WRITE_EXTS:
            raise InputError(f"{out}: cannot write '{ext}' audio; use {ext_list(WRITE_EXTS)}")
        _check_folder(Path(out))
    if subtitles is not None:
        if subtitles.suffix.lower() not in SUBTITLE_FORMATS:
            raise InputError(f"{subtitles}: subtitles must be .srt or .vtt")
        _check_folder(subtitles)
    if timings is not None:
        if timings.suffix.lower() != ".json":
            raise InputError(f"{timings}: timings are written as .json")
        _check_folder(timings)


def _check_folder(path: Path) -> None:
    """The folder exists and is writable, and the path is not a folder (before any synthesis)."""
    audio_io.check_output(path)


def _write(
    stream: Iterator, out: str, collected: list, outputs: audio_io.Outputs | None = None
) -> tuple[int, float]:
    """Write chunks to a file, or a WAV stream on stdout; returns (rate, seconds written).
    With `outputs`, the file is committed with that group's other outputs."""
    from ..audio import STREAM_EXTS, Audio, StreamWriter, save

    rate, frames = 0, 0
    if out == "-":
        sink = sys.stdout.buffer
        for chunk, timing in stream:
            if not rate:
                rate = chunk.rate
                sink.write(wav_stream_header(rate))
            sink.write(pcm16(chunk.samples[0]))
            sink.flush()
            frames += chunk.frames
            if timing is not None:
                collected.append(timing)
        return rate, frames / max(rate, 1)
    path = Path(out)
    if path.suffix.lower() in STREAM_EXTS:
        writer = None
        try:
            for chunk, timing in stream:
                if writer is None:
                    rate = chunk.rate
                    writer = StreamWriter(path, rate, 1, outputs=outputs)
                writer.write(chunk.samples)
                frames += chunk.frames
                if timing is not None:
                    collected.append(timing)
        except BaseException:
            if writer is not None:
                writer.close(ok=False)
            raise
        if writer is not None:
            writer.close()
        return rate, frames / max(rate, 1)
    parts = []
    for chunk, timing in stream:
        rate = chunk.rate
        parts.append(chunk.samples[0])
        if timing is not None:
            collected.append(timing)
    audio = Audio(np.concatenate(parts), rate)
    save(audio, path, outputs=outputs)
    return rate, audio.duration


@app.command()
def voices(
    lang: str | None = typer.Option(None, "--lang", help="Only voices that read this language."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    preview: Path | None = typer.Option(
        None, "--preview", help="Speak a sample with each listed voice into this folder."
    ),
) -> None:
    """List the voices available offline."""
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from ..tasks.read import figures_line, openai_voices, voice_figures
    from ..tasks.read import voices as list_voices

    found = list_voices(lang)
    if not found:
        raise InputError(f"no voice reads '{lang}'; `voicebox voices` lists every language")
    if preview is not None:
        _preview(found, preview, lang)
    if as_json:
        listed = [{**asdict(v), "measured": voice_figures(v.id)} for v in found]
        sys.stdout.write(json.dumps(listed, ensure_ascii=False, indent=1))
        sys.stdout.write("\n")
        return
    table = Table("id", "lang", "gender", "engine", "description", "measured", box=None)
    for v in found:
        figures = figures_line(voice_figures(v.id))
        langs = ",".join(v.languages) or v.lang
        table.add_row(v.id, langs, v.gender, v.engine, v.description, figures)
    Console().print(table)
    err.print(
        "measured: whisper round trip (WER, or CER for ja/zh; lower is better) and DNSMOS OVRL, "
        "from bench/languages.py. OpenAI names: "
        + ", ".join(f"{k} = {v}" for k, v in openai_voices().items())
        + ". Blends mix Kokoro voices only: --blend 'jm_kumo(3)+jf_nezumi(1)'.",
        highlight=False,
    )


def _preview(found: list, folder: Path, lang: str | None) -> None:
    from ..audio import save
    from ..tasks.read import read as run

    folder.mkdir(parents=True, exist_ok=True)
    with progress_bar("previewing", unit="items") as bar:
        for i, v in enumerate(found):
            code = lang or v.lang
            base = code.split("-")[0]
            sample = PREVIEW_TEXT.get(base, "1, 2, 3, 4, 5.")
            speech_lang = base if base in PREVIEW_TEXT else code
            speech = run(sample, voice=v.id, lang=speech_lang)
            save(speech.audio, folder / f"{v.id.replace(':', '_')}.wav")
            bar(i + 1, len(found))
    err.print(f"wrote {len(found)} previews to {folder}")
