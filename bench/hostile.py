"""The hostile-input campaign of issue 16, rerun as one script: broken and odd audio, cut files,
hostile text, bad output paths (missing, a folder, the input itself, a full disk), and server
abuse, each through the real CLI or HTTP with a timeout. Counts cases, clear errors, successes,
tracebacks, hangs, partial files left behind, changed inputs and invented audio (an output longer
than what the input decodes to); then peak memory per command on a 3-hour file.

    flock /tmp/vb/cpu.lock env VOICEBOX_THREADS=1 OMP_NUM_THREADS=1 \\
        .venv/bin/python bench/hostile.py [--memory-cap 300] [--no-memory] [--only NAME]
    ... bench/hostile.py --memory-only edit,transcribe,detect --memory-cap 3000   # just those

Writes bench/results/hostile.json. Scratch files go to a temporary folder, never the repository.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
VOICEBOX = Path(sys.executable).parent / "voicebox"
RESULTS = ROOT / "bench" / "results" / "hostile.json"
RATE = 16_000
TIMEOUT = 180


@dataclass
class Case:
    """One hostile call and what became of it."""

    name: str
    command: str
    outcome: str = ""  # ok | clear_error | traceback | hang | unclear_error | server_error
    rc: int | None = None
    seconds: float = 0.0
    message: str = ""
    partial_files: list[str] = field(default_factory=list)
    changed_inputs: list[str] = field(default_factory=list)
    invented_audio: bool = False


# ---------------------------------------------------------------- inputs


def wav_header(channels: int, rate: int, data_bytes: int, bits: int = 16) -> bytes:
    block = max(1, channels * bits // 8)
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, bits)
    return (
        b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVEfmt " + struct.pack("<I", 16) + fmt
        + b"data" + struct.pack("<I", data_bytes)
    )  # fmt: skip


def speechlike(seconds: float, rate: int = 22_050) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    voice = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((140, 280, 420, 700), 1))
    return (0.2 * voice * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def ffmpeg(*args: str) -> None:
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y"]
    subprocess.run(cmd + list(args), check=True)


def decoded_frames(path: Path) -> int:
    """Samples per channel ffmpeg decodes from a file: what a cut file really holds."""
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "quiet", "-i", str(path), "-ac", "1"]
    out = subprocess.run(cmd + ["-f", "f32le", "-"], capture_output=True).stdout
    return len(out) // 4


def make_audio_inputs(folder: Path) -> dict[str, Path]:
    """Broken, odd and awkward audio files (and things that are not audio files at all)."""
    f: dict[str, Path] = {}

    def put(name: str, data: np.ndarray, rate: int, **kw: object) -> None:
        f[name] = folder / name
        sf.write(f[name], data, rate, **kw)

    speech = speechlike(6.0)
    put("good.wav", speech, 22_050)
    put("stereo44k.wav", np.stack([speech, speech[::-1]], 1), 22_050)
    put("mono8k.wav", speechlike(3.0, 8000), 8000)
    put("rate192k.wav", speechlike(2.0, 192_000), 192_000)
    put("float64.wav", speech.astype(np.float64), 22_050, subtype="DOUBLE")
    put("pcm24.flac", speech, 22_050, subtype="PCM_24")
    put("u8.wav", speech, 22_050, subtype="PCM_U8")
    put("eight_channels.wav", np.tile(speech[:, None], (1, 8)), 22_050)
    put("silence.wav", np.zeros(3 * 22_050, np.float32), 22_050)
    put("one_sample.wav", np.zeros(1, np.float32), 22_050)
    put("ten_ms.wav", speech[:220], 22_050)
    put("square_clipped.wav", np.sign(speech).astype(np.float32), 22_050)
    put("dc_offset.wav", (speech * 0.3 + 0.6).astype(np.float32), 22_050)
    nan = speech.copy()
    nan[1000:1100] = np.nan
    put("nan.wav", nan, 22_050, subtype="FLOAT")
    inf = speech.copy()
    inf[500] = np.inf
    put("inf.wav", inf, 22_050, subtype="FLOAT")
    huge = speech.copy()
    huge[2000:2100] = 1e30
    put("huge_1e30.wav", huge, 22_050, subtype="FLOAT")
    put("many_channels.wav", np.zeros((1000, 65), np.float32), 22_050)
    raw = {
        "empty.wav": b"",
        "text.wav": b"this is not audio, only words\n" * 40,
        "random.mp3": np.random.default_rng(0).bytes(20_000),
        "random.flac": np.random.default_rng(1).bytes(20_000),
        "zero_channels.wav": wav_header(0, RATE, 3200) + bytes(3200),
        "megahertz.wav": wav_header(1, 1_000_000, 32000) + bytes(32000),
        "rate_500.wav": wav_header(1, 500, 32000) + bytes(32000),
        "header_only.wav": wav_header(1, RATE, 0),
        "lying_header.wav": wav_header(1, RATE, 10**9) + bytes(32000),
        "streamed_unknown.wav": wav_header(1, RATE, 0)[:-4] + b"\xff\xff\xff\xff"
        + (speech[:RATE] * 32767).astype("<i2").tobytes(),
    }  # fmt: skip
    for name, data in raw.items():
        f[name] = folder / name
        f[name].write_bytes(data)
    whole = folder / "good.wav"
    for ext in ("mp3", "flac", "ogg"):
        full = folder / f"whole.{ext}"
        ffmpeg("-i", str(whole), str(full))
        data = full.read_bytes()
        for label, size in (("k1", 1024), ("half", len(data) // 2)):
            f[f"{label}.{ext}"] = folder / f"{label}.{ext}"
            f[f"{label}.{ext}"].write_bytes(data[:size])
    cut = folder / "cut.wav"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    f["cut.wav"] = cut
    (folder / "a_folder").mkdir()
    f["a_folder"] = folder / "a_folder"
    loop = folder / "loop.wav"
    loop.symlink_to(loop)
    f["loop.wav"] = loop
    broken = folder / "broken_link.wav"
    broken.symlink_to(folder / "nowhere.wav")
    f["broken_link.wav"] = broken
    fifo = folder / "fifo.wav"
    os.mkfifo(fifo)
    f["fifo.wav"] = fifo
    f["dev_zero"] = Path("/dev/zero")
    locked = folder / "mode000.wav"
    sf.write(locked, speech, 22_050)
    locked.chmod(0)
    f["mode000.wav"] = locked
    return f


def make_text_inputs(folder: Path) -> dict[str, Path]:
    texts = {
        "empty.txt": b"",
        "spaces.txt": b"   \n\n\t  \n",
        "symbols.txt": b"$$$ %%% *** ### @@@ !!!",
        "emoji.txt": "🙂🙂🙂 🎉".encode(),
        "zalgo.txt": ("H" + "\u0301\u0302\u0303\u0304" * 20 + "ello there.").encode(),
        "rtl.txt": "مرحبا بالعالم. שלום עולם.".encode(),
        "nul.txt": b"hello\x00world\x00" * 20,
        "binary.txt": np.random.default_rng(2).bytes(4000),
        "utf16.txt": "Good morning. How are you?\n".encode("utf-16"),
        "utf16le_nobom.txt": "Good morning to you.\n".encode("utf-16-le"),
        "crlf.txt": b"First line.\r\nSecond line.\r\n",
        "long_number.txt": ("1" * 400 + ".").encode(),
        "long_word.txt": ("a" * 5000 + ".").encode(),
        "control.txt": b"Hello\x07\x1b[31m there\x08.",
        "latin1.txt": "Caf\xe9 au lait, s'il vous pla\xeet.".encode("latin-1"),
    }
    out = {}
    for name, data in texts.items():
        out[name] = folder / name
        out[name].write_bytes(data)
    return out


# ---------------------------------------------------------------- running and judging


def digest(path: Path) -> str:
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_mode & 0o444 == 0:
            return "special"
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "unreadable"


def judge(case: Case, proc: subprocess.CompletedProcess[str] | None, expect_ok: bool) -> None:
    if proc is None:
        case.outcome = "hang"
        return
    case.rc = proc.returncode
    err = proc.stderr
    lines = [line for line in err.splitlines() if line.strip()]
    case.message = (lines[-1] if lines else "")[:300]
    if "Traceback" in err:
        case.outcome = "traceback"
    elif proc.returncode == 0:
        case.outcome = "ok"
    elif proc.returncode in (1, 2, 3, 4) and lines and ("error:" in lines[-1]):
        # One line per problem: "error: ..." (or detect's "FILE: error: ..." per file).
        noise = [ln for ln in lines if "error:" not in ln and not ln.startswith("warning:")]
        case.outcome = "clear_error" if not noise else "unclear_error"
    elif proc.returncode == 1 and not lines and not expect_ok:
        case.outcome = "unclear_error"  # failed without saying why
    else:
        case.outcome = "unclear_error"


def run_cli(
    name: str,
    args: list[str],
    inputs: list[Path],
    out_dir: Path,
    expect_ok: bool = False,
    stdin: bytes | None = None,
    decodable: Path | None = None,
    output: Path | None = None,
) -> Case:
    """Run one CLI call; check for hangs, tracebacks, leftovers and changed inputs."""
    before = {str(p): digest(p) for p in inputs}
    listing = set(out_dir.iterdir()) if out_dir.exists() else set()
    case = Case(name, "voicebox " + " ".join(args))
    env = dict(os.environ, VOICEBOX_THREADS="1", OMP_NUM_THREADS="1", COLUMNS="200")
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [str(VOICEBOX), *args],
            input=stdin,
            capture_output=True,
            timeout=TIMEOUT,
            env=env,
            stdin=subprocess.DEVNULL if stdin is None else None,
        )
        text = subprocess.CompletedProcess(
            proc.args,
            proc.returncode,
            proc.stdout.decode(errors="replace"),
            proc.stderr.decode(errors="replace"),
        )
    except subprocess.TimeoutExpired:
        text = None
    case.seconds = round(time.perf_counter() - started, 2)
    judge(case, text, expect_ok)
    after = set(out_dir.iterdir()) if out_dir.exists() else set()
    new = sorted(after - listing)
    hidden = [p.name for p in new if p.name.startswith(".")]
    failed = case.outcome != "ok"
    case.partial_files = hidden + (
        [p.name for p in new if not p.name.startswith(".")] if failed else []
    )
    case.changed_inputs = [p for p, d in before.items() if digest(Path(p)) != d]
    if decodable is not None and output is not None and case.outcome == "ok" and output.exists():
        case.invented_audio = sf.info(str(output)).frames > decoded_frames(decodable) + 1152
    for p in new:  # keep the out folder empty for the next case
        with contextlib.suppress(OSError):
            p.unlink()
    return case


# ---------------------------------------------------------------- the campaign


SUCCEED = {
    "good.wav", "stereo44k.wav", "mono8k.wav", "rate192k.wav", "float64.wav", "pcm24.flac",
    "u8.wav", "eight_channels.wav", "silence.wav", "square_clipped.wav", "dc_offset.wav",
    "streamed_unknown.wav", "half.mp3", "half.flac", "half.ogg", "k1.mp3", "ten_ms.wav",
    "one_sample.wav",
}  # fmt: skip
"""Inputs a command may well accept; every other one must be refused with one clear line."""


def audio_cases(files: dict[str, Path], out: Path) -> list[Case]:
    cases = []
    root = os.geteuid() == 0
    for name, path in files.items():
        ok = name in SUCCEED or (name == "mode000.wav" and root)
        target = out / "cleaned.wav"
        cut = name.startswith(("half.", "k1.", "cut."))
        cases.append(
            run_cli(f"clean {name}", ["clean", str(path), "-o", str(target), "--no-guard"],
                    [path], out, ok, decodable=path if cut else None, output=target)
        )  # fmt: skip
        if name.endswith((".mp3", ".flac", ".ogg", ".wav")) or name in ("dev_zero", "a_folder"):
            cases.append(run_cli(f"detect {name}", ["detect", str(path)], [path], out, ok))
        if name in SUCCEED and name not in ("rate192k.wav", "eight_channels.wav") or not ok:
            cases.append(run_cli(f"transcribe {name}", ["transcribe", str(path)], [path], out, ok))
    return cases


def text_cases(texts: dict[str, Path], out: Path) -> list[Case]:
    cases = []
    for name, path in texts.items():
        cases.append(
            run_cli(f"read -f {name}", ["read", "-f", str(path), "-o", str(out / "r.wav")],
                    [path], out)
        )  # fmt: skip
    hostile = {
        "only punctuation": "?!.,;:",
        "numbers": "999999999999999999999999999999",
        "mixed scripts": "Hello 你好 привет مرحبا.",
        "angle brackets": "<speak><break time='100s'/></speak>",
        "shell": "$(rm -rf /); `reboot`",
    }
    for label, text in hostile.items():
        cases.append(run_cli(f"read '{label}'", ["read", text, "-o", str(out / "r.wav")], [], out))
    cases.append(run_cli("read stdin empty", ["read", "-", "-o", str(out / "r.wav")], [], out,
                         stdin=b""))  # fmt: skip
    return cases


def output_cases(files: dict[str, Path], out: Path, scratch: Path) -> list[Case]:
    good = files["good.wav"]
    copy = scratch / "mine.wav"
    copy.write_bytes(good.read_bytes())
    link = scratch / "mine_link.wav"
    link.symlink_to(copy)
    hard = scratch / "mine_hard.wav"
    os.link(copy, hard)
    mine = [copy, link, hard]
    t = [
        ("clean -o missing folder", ["clean", str(good), "-o", str(out / "no" / "o.wav")]),
        ("clean -o a folder", ["clean", str(good), "-o", str(files["a_folder"])]),
        ("clean -o /proc", ["clean", str(good), "-o", "/proc/voicebox.wav"]),
        ("clean -o .xyz", ["clean", str(good), "-o", str(out / "o.xyz")]),
        ("clean -o input", ["clean", str(copy), "-o", str(copy)]),
        ("clean -o symlink to input", ["clean", str(copy), "-o", str(link)]),
        ("clean -o hard link to input", ["clean", str(copy), "-o", str(hard)]),
        ("transcribe -o input", ["transcribe", str(copy), "-o", str(copy)]),
        ("transcribe -o missing folder", ["transcribe", str(good), "-o", str(out / "n" / "t.txt")]),
        ("edit -o input", ["edit", str(copy), "--replace", "a", "b", "-o", str(copy)]),
        ("edit -o missing folder", ["edit", str(good), "--replace", "a", "b", "-o",
                                    str(out / "n" / "e.wav")]),
        ("read --subtitles missing folder", ["read", "Hello.", "-o", str(out / "r.wav"),
                                             "--subtitles", str(out / "n" / "r.srt")]),
        ("read -o .xyz", ["read", "Hello.", "-o", str(out / "r.xyz")]),
        ("read --like input -o input", ["read", "Hi.", "--engine", "voicebox", "--like",
                                        str(copy), "--consent", "I agree.", "-o", str(copy)]),
        ("detect missing", ["detect", str(out / "nothing.wav")]),
        ("clean unknown engine", ["clean", str(good), "-o", str(out / "o.wav"), "--engine", "x"]),
        ("clean bad strength", ["clean", str(good), "-o", str(out / "o.wav"), "--strength", "-3"]),
        ("read bad speed", ["read", "Hello.", "-o", str(out / "r.wav"), "--speed", "0"]),
        ("read bad pitch", ["read", "Hello.", "-o", str(out / "r.wav"), "--pitch", "nan"]),
        ("read unknown voice", ["read", "Hello.", "-o", str(out / "r.wav"), "--voice", "zz"]),
    ]  # fmt: skip
    cases = [run_cli(name, args, mine, out) for name, args in t]
    tiny = scratch / "tiny"
    tiny.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(tiny)],
                             capture_output=True).returncode == 0  # fmt: skip
    if mounted:
        try:
            long = scratch / "long.wav"
            sf.write(long, speechlike(8.0), 22_050)
            full = [
                ("clean to a full disk", ["clean", str(long), "-o", str(tiny / "o.wav"),
                                          "--no-guard"]),
                ("clean --loudness to a full disk", ["clean", str(long), "-o", str(tiny / "o.wav"),
                                                     "--no-guard", "--loudness", "-16"]),
                ("read to a full disk", ["read", "Hello there, this is a longer sentence to "
                                         "fill a tiny disk with audio.", "-o", str(tiny / "r.wav")]),
            ]  # fmt: skip
            for name, args in full:
                case = run_cli(name, args, [long], tiny)
                if case.outcome == "clear_error" and "no space left" not in case.message:
                    case.outcome = "unclear_error"
                cases.append(case)
        finally:
            subprocess.run(["umount", str(tiny)], check=False)
    return cases


# ---------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
    chunks: list[bytes] | None = None,
) -> tuple[int, str]:  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        if chunks is not None:
            conn.putrequest(method, path)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            with contextlib.suppress(OSError):  # the server may answer and close mid-body
                for c in chunks:
                    conn.send(f"{len(c):x}\r\n".encode() + c + b"\r\n")
                conn.send(b"0\r\n\r\n")
        else:
            conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = "vbhostile" + os.urandom(6).hex()
    parts = []
    for k, v in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n')
    body = "".join(parts).encode()
    for k, (filename, data) in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"; filename="{filename}"'
            "\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        body += head.encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def server_cases(files: dict[str, Path], scratch: Path) -> list[Case]:
    port = free_port()
    env = dict(os.environ, VOICEBOX_THREADS="1", OMP_NUM_THREADS="1")
    args = [str(VOICEBOX), "serve", "--port", str(port), "--host", "127.0.0.1"]
    server = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              cwd=scratch)  # fmt: skip
    cases: list[Case] = []
    try:
        for _ in range(300):
            try:
                if request(port, "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        good = files["good.wav"].read_bytes()
        big_wav = wav_header(1, RATE, 4 * RATE * 2) + bytes(4 * RATE * 2) * 40
        form_good, ct_good = multipart({"task": "clean"}, {"file": ("x.wav", good)})
        form_text, ct_text = multipart({}, {"file": ("x.wav", b"not audio at all" * 50)})
        form_cut, ct_cut = multipart({}, {"file": ("x.wav", files["cut.wav"].read_bytes())})
        form_empty, ct_empty = multipart({}, {"file": ("x.wav", b"")})
        form_nofile, ct_nofile = multipart({"model": "whisper-1"}, {})
        j = {"content-type": "application/json"}
        huge_text = json.dumps({"model": "tts-1", "voice": "alloy", "input": "a " * 600_000})
        checks = [
            ("raw audio body to clean", "POST", "/v1/audio/clean", big_wav,
             {"content-type": "audio/wav"}, None, 415),
            ("raw octet-stream to transcriptions", "POST", "/v1/audio/transcriptions", big_wav,
             {"content-type": "application/octet-stream"}, None, 415),
            ("chunked 300 MB-style JSON to speech", "POST", "/v1/audio/speech", None, j,
             [b'{"input": "'] + [b"a" * 65536] * 200 + [b'"}'], 413),
            ("huge declared JSON to speech", "POST", "/v1/audio/speech", huge_text.encode(), j,
             None, 413),
            ("job clean without file", "POST", "/v1/jobs",
             json.dumps({"task": "clean", "params": {}}).encode(), j, None, 400),
            ("job transcribe without file", "POST", "/v1/jobs",
             json.dumps({"task": "transcribe"}).encode(), j, None, 400),
            ("job unknown task", "POST", "/v1/jobs", json.dumps({"task": "fly"}).encode(), j,
             None, 400),
            ("job not JSON", "POST", "/v1/jobs", b"{not json", j, None, 400),
            ("job JSON list", "POST", "/v1/jobs", b"[1, 2]", j, None, 400),
            ("job clean multipart good", "POST", "/v1/jobs", form_good,
             {"content-type": ct_good}, None, 202),
            ("transcribe a text upload", "POST", "/v1/audio/transcriptions", form_text,
             {"content-type": ct_text}, None, 400),
            ("transcribe a cut WAV", "POST", "/v1/audio/transcriptions", form_cut,
             {"content-type": ct_cut}, None, 400),
            ("transcribe an empty upload", "POST", "/v1/audio/transcriptions", form_empty,
             {"content-type": ct_empty}, None, 400),
            ("transcribe without file", "POST", "/v1/audio/transcriptions", form_nofile,
             {"content-type": ct_nofile}, None, 400),
            ("malformed multipart", "POST", "/v1/audio/clean", b"--x\r\ngarbage",
             {"content-type": "multipart/form-data; boundary=x"}, None, 400),
            ("speech empty input", "POST", "/v1/audio/speech",
             json.dumps({"model": "tts-1", "voice": "alloy", "input": ""}).encode(), j, None, 400),
            ("speech unknown voice", "POST", "/v1/audio/speech",
             json.dumps({"model": "tts-1", "voice": "zz", "input": "Hi."}).encode(), j, None, 400),
            ("speech wrong type", "POST", "/v1/audio/speech",
             json.dumps({"model": "tts-1", "voice": "alloy", "input": 5}).encode(), j, None, 400),
            ("unknown job", "GET", "/v1/jobs/nope", None, {}, None, 404),
            ("unknown route", "GET", "/v1/nothing", None, {}, None, 404),
        ]  # fmt: skip
        for name, method, path, body, headers, chunks, want in checks:
            case = Case(f"server {name}", f"{method} {path}")
            started = time.perf_counter()
            try:
                status, text = request(port, method, path, body, headers, chunks)
            except (OSError, http.client.HTTPException) as exc:
                status, text = -1, f"{type(exc).__name__}: {exc}"
            case.seconds = round(time.perf_counter() - started, 2)
            case.rc = status
            case.message = text[:200]
            if status == -1:
                case.outcome = "hang"
            elif status >= 500:
                case.outcome = "server_error"
            elif status == want:
                case.outcome = "ok" if want < 400 else "clear_error"
            else:
                case.outcome = "unclear_error"  # answered, but not what happened
            cases.append(case)
        # 40 clients at once on the cheap routes: none may fail or hang.
        results: list[int] = []

        def hit() -> None:
            try:
                results.append(request(port, "GET", "/v1/voices")[0])
            except OSError:
                results.append(-1)

        threads = [threading.Thread(target=hit) for _ in range(40)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        case = Case("server 40 concurrent clients", "GET /v1/voices x40")
        case.seconds = round(time.perf_counter() - started, 2)
        case.outcome = "ok" if results.count(200) == 40 else "server_error"
        case.message = f"{results.count(200)}/40 answered 200"
        cases.append(case)
    finally:
        server.terminate()
        try:
            _, err = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            _, err = server.communicate()
        if b"Traceback" in err:
            cases.append(Case("server log", "voicebox serve", "traceback",
                              message=err.decode(errors="replace")[-300:]))  # fmt: skip
    return cases


# ---------------------------------------------------------------- peak memory on a 3-hour file


SPARSE_SPEECH_S = 300
"""With --sparse, speech fills only the first and last this many seconds of the 3 hours."""


def three_hours(folder: Path, sparse: bool = False) -> Path:
    """A 3-hour 22.05 kHz mono WAV: a synthesised sentence and a pause, tiled (476 MB). `sparse`
    keeps the tiles only in the first and last SPARSE_SPEECH_S and leaves digital silence between,
    which the recogniser skips: every command then runs to its end in minutes, and its peak memory
    covers every stage (an edit's voice matching and splicing too), not just the first minutes."""
    path = folder / "three_hours.wav"
    env = dict(os.environ, VOICEBOX_THREADS="1")
    clip = folder / "clip.wav"
    subprocess.run([str(VOICEBOX), "read", "The quick brown fox jumps over the lazy dog, and "
                    "then it runs far away into the forest.", "-o", str(clip)], env=env,
                   check=True, capture_output=True)  # fmt: skip
    x, rate = sf.read(clip, dtype="float32")
    unit = np.concatenate([x, np.zeros(int(2.0 * rate), np.float32)])
    frames = 3 * 3600 * rate
    speech = int(SPARSE_SPEECH_S * rate)
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16") as f:
        written = 0
        block = np.tile(unit, int(600 * rate / len(unit)) + 1)
        while written < frames:
            part = block[: frames - written]
            if sparse:
                part = part.copy()
                t = written + np.arange(len(part))
                part[(t >= speech) & (t < frames - speech)] = 0.0
            f.write(part)
            written += len(part)
    return path


def _rss_kb(pid: int) -> int:
    """A live process's resident set (kB), 0 once it has gone."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _tree(pid: int) -> list[int]:
    """`pid` and its live descendants (children of every thread, recursively)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                with contextlib.suppress(OSError):
                    todo += [int(c) for c in (task / "children").read_text().split()]
    return out


def peak_memory(cmd: list[str], cap: float, poll_s: float = 0.2) -> dict[str, object]:
    """Peak memory of a command, stopped after `cap` s: the kernel's high-water mark of its own
    process (peak_rss_mb), and, polled every `poll_s`, the largest sum of the resident sets of it and
    its live descendants (tree_peak_mb: a stage moved into a child still counts) and the largest
    single process of the tree (max_process_mb)."""
    env = dict(os.environ, VOICEBOX_THREADS="1", OMP_NUM_THREADS="1")
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = tree_peak = single = 0
    finished = True
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)  # reaped here, with its rusage
        if pid:
            break
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        sizes = [_rss_kb(p) for p in _tree(proc.pid)]
        tree_peak, single = max(tree_peak, sum(sizes)), max([single, *sizes])
        if time.perf_counter() - started > cap:
            finished = False
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(poll_s)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    peak = max(peak, usage.ru_maxrss)
    return {
        "command": " ".join(Path(c).name if c.startswith("/") else c for c in cmd),
        "peak_rss_mb": round(peak / 1024),
        "tree_peak_mb": round(max(tree_peak, peak) / 1024),
        "max_process_mb": round(max(single, peak) / 1024),
        "seconds": round(time.perf_counter() - started, 1),
        "finished": finished,
        "rc": proc.returncode if finished else None,
        "error": err.strip().splitlines()[-1][:200] if finished and status and err.strip() else "",
    }


MEMORY_TASKS = ("clean", "detect", "transcribe", "edit")


def memory(
    folder: Path, cap: float, tasks: tuple[str, ...] = MEMORY_TASKS, sparse: bool = False
) -> list[dict[str, object]]:
    """Peak RSS and wall time of each command on the 3-hour file (stopped after `cap` s)."""
    big = three_hours(folder, sparse)
    out = folder / "out"
    out.mkdir(exist_ok=True)
    # The file repeats one sentence ~1800 times: the edit replaces one "quick" half-way through
    # (sparse: in the last minutes).
    edit = [
        "edit",
        str(big),
        "--replace",
        "quick",
        "slow",
        "--occurrence",
        "60" if sparse else "900",
    ]
    cmds = {
        "clean": ["clean", str(big), "-o", str(out / "c.wav"), "--no-guard"],
        "detect": ["detect", str(big)],
        "transcribe": ["transcribe", str(big), "-o", str(out / "t.txt")],
        "edit": [*edit, "-o", str(out / "e.wav")],
    }
    rows = []
    for name, args in cmds.items():
        if name not in tasks:
            continue
        row = peak_memory([str(VOICEBOX), *args], cap)
        row["task"] = name
        row["file"] = "3 h, speech in the first and last 5 min" if sparse else "3 h of speech"
        print(f"memory {name}: {row}", flush=True)
        rows.append(row)
    big.unlink()
    return rows


# ---------------------------------------------------------------- main


def summary(cases: list[Case]) -> dict[str, int]:
    count = lambda outcome: sum(c.outcome == outcome for c in cases)  # noqa: E731
    return {
        "cases": len(cases),
        "ok": count("ok"),
        "clear_errors": count("clear_error"),
        "unclear_errors": count("unclear_error"),
        "tracebacks": count("traceback"),
        "hangs": count("hang"),
        "server_errors": count("server_error"),
        "partial_files": sum(bool(c.partial_files) for c in cases),
        "changed_inputs": sum(bool(c.changed_inputs) for c in cases),
        "invented_audio": sum(c.invented_audio for c in cases),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory-cap", type=float, default=300.0, help="seconds per command")
    parser.add_argument("--no-memory", action="store_true", help="skip the 3-hour file")
    parser.add_argument("--only", choices=["audio", "text", "outputs", "server"], default=None)
    parser.add_argument(
        "--memory-only",
        default=None,
        help="only the 3-hour memory runs of these commands (comma-separated: "
        f"{','.join(MEMORY_TASKS)}); their rows replace those in the results, the rest is kept",
    )
    parser.add_argument(
        "--sparse", action="store_true", help="with --memory-only: the mostly silent 3-hour file"
    )
    opts = parser.parse_args()
    if opts.memory_only:
        memory_only(tuple(opts.memory_only.split(",")), opts.memory_cap, opts.sparse)
        return
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="voicebox-hostile-") as tmp:
        scratch = Path(tmp)
        (scratch / "in").mkdir()
        (scratch / "out").mkdir()
        files = make_audio_inputs(scratch / "in")
        texts = make_text_inputs(scratch / "in")
        out = scratch / "out"
        cases: list[Case] = []
        groups = {
            "audio": lambda: audio_cases(files, out),
            "text": lambda: text_cases(texts, out),
            "outputs": lambda: output_cases(files, out, scratch),
            "server": lambda: server_cases(files, scratch),
        }
        for name, run in groups.items():
            if opts.only in (None, name):
                found = run()
                for c in found:
                    flag = "" if c.outcome in ("ok", "clear_error") else "   <-- " + c.outcome
                    extra = " partial" if c.partial_files else ""
                    extra += " changed-input" if c.changed_inputs else ""
                    extra += " invented-audio" if c.invented_audio else ""
                    print(f"{c.outcome:14s} {c.seconds:6.1f}s {c.name}: {c.message[:90]}"
                          f"{flag}{extra}", flush=True)  # fmt: skip
                cases.extend(found)
        for p in (files["mode000.wav"],):
            p.chmod(0o600)
        campaign_s = time.perf_counter() - started
        write(cases, campaign_s, [], opts.memory_cap)  # kept even if the memory part fails
        rows = [] if opts.no_memory else memory(scratch, opts.memory_cap)
    write(cases, campaign_s, rows, opts.memory_cap)


def memory_only(tasks: tuple[str, ...], cap: float, sparse: bool = False) -> None:
    """Rerun only the memory part for `tasks`, keeping the campaign's results as they were."""
    unknown = set(tasks) - set(MEMORY_TASKS)
    if unknown:
        raise SystemExit(f"unknown memory task(s): {', '.join(sorted(unknown))}")
    result = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    with tempfile.TemporaryDirectory(prefix="voicebox-hostile-") as tmp:
        rows = memory(Path(tmp), cap, tasks, sparse)
    key = "memory_3h_sparse" if sparse else "memory_3h"
    kept = [r for r in result.get(key, []) if r.get("task") not in tasks]
    order = {name: i for i, name in enumerate(MEMORY_TASKS)}
    result[key] = sorted(kept + rows, key=lambda r: order.get(str(r.get("task")), 99))
    for row in rows:
        row["cap_s"] = cap
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {RESULTS}")


def write(cases: list[Case], campaign_s: float, rows: list, cap: float) -> None:
    """Write bench/results/hostile.json and print the counts."""
    result = {
        "summary": summary(cases),
        "campaign_seconds": round(campaign_s, 1),
        "memory_3h": rows,
        "memory_cap_s": cap,
        "cases": [asdict(c) for c in cases],
        "command": "flock /tmp/vb/cpu.lock env VOICEBOX_THREADS=1 OMP_NUM_THREADS=1 "
        ".venv/bin/python bench/hostile.py",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps(result["summary"]), f"in {campaign_s:.0f} s; wrote {RESULTS}")


if __name__ == "__main__":
    main()
