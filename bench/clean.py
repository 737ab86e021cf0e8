"""Clean benchmark: dfn3 vs rnnoise vs gate side by side, our pipeline's overhead, RTF and memory.

Usage: .venv/bin/python bench/clean.py [--quick] [--hour-minutes 60]
- generated mixtures (Piper speech + pink noise + 50 Hz hum) at 0/5/10 dB: PESQ-WB, STOI, DNSMOS, RTF
- VoiceBank+DEMAND pairs from ../shared/data/denoise when present (skipped cleanly when absent)
- dfn3 engines side by side on the same 48 kHz audio: the wheel's Rust runtime in a bare ctypes
  frame loop, our onnxruntime stream bare, the streaming clean chain and the clean task; CPU ratios
- peak RSS (VmHWM) of clean_file on a generated 1-hour file, in a fresh subprocess
Writes bench/results/clean.json. CPU times are process CPU seconds (the machine is shared, so wall
time is reported too, but CPU time is the fair number); every engine runs on 1 thread.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("VOICEBOX_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from voicebox.audio import Audio, load, resample  # noqa: E402
from voicebox.engines import denoise  # noqa: E402
from voicebox.engines.quality import dnsmos  # noqa: E402
from voicebox.tasks.clean import clean  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "denoise" / "voicebank_demand_pairs"
RESULTS = ROOT / "bench" / "results" / "clean.json"
SNRS = (0.0, 5.0, 10.0)
TEXT = (
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. "
    "It is easy to tell the depth of a well. These days a chicken leg is a rare dish. "
    "Rice is often served in round bowls. The juice of lemons makes fine punch. "
    "The box was thrown beside the parked truck. The hogs were fed chopped corn and garbage."
)


def metrics(reference: np.ndarray, signal: Audio) -> dict[str, float]:
    """PESQ-WB and STOI against the clean reference (16 kHz), and reference-free DNSMOS."""
    from pesq import pesq
    from pystoi import stoi

    ref16 = resample(reference, signal.rate, 16_000) if signal.rate != 16_000 else reference
    deg16 = signal.to_rate(16_000).samples[0]
    scores = dnsmos(signal)
    try:
        p = float(pesq(16_000, ref16, deg16, "wb"))
    except Exception:  # pesq raises on silent or too-short input
        p = float("nan")
    return {
        "pesq_wb": round(p, 3),
        "stoi": round(float(stoi(ref16, deg16, 16_000)), 3),
        "dnsmos_ovrl": round(scores["ovrl"], 3),
        "dnsmos_sig": round(scores["sig"], 3),
        "dnsmos_bak": round(scores["bak"], 3),
    }


def timed_clean(noisy: Audio, engine: str) -> tuple[Audio, float, float]:
    """Clean once (engine already warm) and return (output, cpu seconds, wall seconds)."""
    cpu, wall = time.process_time(), time.perf_counter()
    out = clean(noisy, engine)
    return out, time.process_time() - cpu, time.perf_counter() - wall


def compare(name: str, reference: np.ndarray, noisy: Audio) -> dict[str, object]:
    row: dict[str, object] = {"case": name, "seconds": round(noisy.duration, 2)}
    row["noisy"] = metrics(reference, noisy)
    for engine in denoise.ENGINES:
        out, cpu, wall = timed_clean(noisy, engine)
        row[engine] = metrics(reference, out) | {
            "rtf_cpu": round(cpu / noisy.duration, 4),
            "rtf_wall": round(wall / noisy.duration, 4),
        }
    print(json.dumps(row), flush=True)
    return row


def generated(speech: Audio) -> list[dict[str, object]]:
    from conftest import hum, mix, pink_noise

    x = speech.samples[0]
    noise = pink_noise(len(x), seed=7) + 0.6 * hum(len(x), speech.rate)
    return [
        compare(f"pink+hum {snr:g} dB", x, Audio(mix(x, noise, snr), speech.rate)) for snr in SNRS
    ]


def voicebank() -> list[dict[str, object]] | str:
    if not (DATA / "clean").is_dir():
        return "skipped: ../shared/data/denoise/voicebank_demand_pairs not present"
    rows = []
    for path in sorted((DATA / "noisy").glob("*.wav")):
        reference = load(DATA / "clean" / path.name).samples[0]
        rows.append(compare(f"voicebank {path.stem}", reference, load(path)))
    return rows


def overhead(speech: Audio, seconds: float) -> dict[str, float]:
    """DeepFilterNet3 engines side by side on identical 48 kHz audio, 1 thread, CPU seconds.

    tract bare: the wheel's Rust runtime in a plain ctypes loop, one 10 ms frame per call;
    ort bare: our onnxruntime stream (engines/dfn_onnx.py, the `dfn3` engine) fed 10 s blocks;
    chain: the streaming clean chain (tasks.clean.Cleaner: resampling + dfn3) at 48 kHz and from
    16 kHz; clean task: `clean(audio, "dfn3")` with everything the task adds around the chain,
    without and with the never-worse guard.
    Runs are interleaved and the minimum of 3 is kept, so load from others cancels out.
    """
    from voicebox.engines.dfn_onnx import DFN3Stream
    from voicebox.tasks.clean import Cleaner

    x48 = resample(speech.samples[0], speech.rate, 48_000)
    x48 = np.tile(x48, int(np.ceil(seconds * 48_000 / len(x48))))[: int(seconds * 48_000)]
    x16 = Audio(x48, 48_000).to_rate(16_000).samples
    lib, model = denoise._dfn_library()
    strength = denoise.DEFAULT_STRENGTH["dfn3"]

    def tract_bare() -> float:
        state = lib.df_create(model, strength, None)
        out = np.zeros(480, dtype=np.float32)
        ptr = ctypes.POINTER(ctypes.c_float)
        start = time.process_time()
        for i in range(0, len(x48) - 479, 480):
            frame = np.ascontiguousarray(x48[i : i + 480])
            lib.df_process_frame(state, frame.ctypes.data_as(ptr), out.ctypes.data_as(ptr))
        spent = time.process_time() - start
        lib.df_free(state)
        return spent

    def ort_bare() -> float:
        stream = DFN3Stream(strength)
        start = time.process_time()
        for i in range(0, len(x48), 480_000):
            stream.process(x48[i : i + 480_000])
        stream.flush()
        return time.process_time() - start

    def chain(samples: np.ndarray, rate: int) -> float:
        start = time.process_time()
        cleaner = Cleaner(rate, 1, "dfn3", strength)
        for i in range(0, samples.shape[1], 10 * rate):
            cleaner.process(samples[:, i : i + 10 * rate])
        cleaner.flush()
        return time.process_time() - start

    def task(guard: bool) -> float:
        start = time.process_time()
        clean(Audio(x48, 48_000), "dfn3", guard=guard)
        return time.process_time() - start

    tract_bare(), ort_bare(), chain(x48[None], 48_000)  # warm up
    runs = [
        (
            tract_bare(),
            ort_bare(),
            chain(x48[None], 48_000),
            chain(x16, 16_000),
            task(False),
            task(True),
        )
        for _ in range(3)
    ]  # interleaved: fair under load
    t, o, c48, c16, whole, guarded = (min(r[i] for r in runs) for i in range(6))
    from voicebox.tasks.clean import _Judge

    y48 = clean(Audio(x48, 48_000), "dfn3", guard=False).samples
    head = int(60 * 48_000)
    return {
        "seconds": seconds,
        "strength_db": strength,
        "tract_bare_cpu_s": round(t, 3),
        "ort_bare_cpu_s": round(o, 3),
        "chain_48k_cpu_s": round(c48, 3),
        "chain_16k_cpu_s": round(c16, 3),
        "clean_task_48k_cpu_s": round(whole, 3),
        "tract_bare_rtf_cpu": round(t / seconds, 4),
        "ort_bare_rtf_cpu": round(o / seconds, 4),
        "chain_rtf_cpu_48k": round(c48 / seconds, 4),
        "chain_rtf_cpu_16k": round(c16 / seconds, 4),
        "clean_task_rtf_cpu_48k": round(whole / seconds, 4),
        "ort_vs_tract_bare": round(o / t, 4),
        "chain_48k_vs_ort_bare": round(c48 / o, 4),
        "chain_16k_vs_ort_bare": round(c16 / o, 4),
        "clean_task_48k_vs_ort_bare": round(whole / o, 4),
        "clean_task_guarded_cpu_s": round(guarded, 3),
        "clean_task_guarded_rtf_cpu": round(guarded / seconds, 4),
        "guard_rejected_full_strength": _Judge(x48[None, :head], 48_000).worse(y48[:, :head]),
        "note": "clean task = clean(audio, 'dfn3', guard=False); guarded adds the never-worse "
        "guard (the input's loudest 9 s DNSMOS window scored once, the output's per attempt; a rejected attempt is redone softer)",
    }


CHILD = """
import json, sys, time
sys.path.insert(0, {src!r})
from voicebox.tasks.clean import clean_file
start, cpu = time.perf_counter(), time.process_time()
report = clean_file({src_file!r}, {dst_file!r}, engine="dfn3")
# ru_maxrss would carry the parent's peak across fork+exec on Linux; VmHWM is this image's own
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({{
    "maxrss_mb": int(hwm) / 1024,
    "wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu,
    "duration_s": report.duration,
}}))
"""


def long_file_memory(speech: Audio, minutes: float) -> dict[str, object]:
    """Clean a generated long 16 kHz mono noisy file in a fresh process; report its peak RSS."""
    from conftest import hum, mix, pink_noise

    rate = 16_000
    x = speech.to_rate(rate).samples[0]
    x = mix(x, pink_noise(len(x), seed=3) + 0.6 * hum(len(x), rate), 5.0)
    with tempfile.TemporaryDirectory(prefix="voicebox-bench-") as folder:
        src, dst = Path(folder) / "long.wav", Path(folder) / "long_clean.wav"
        total = int(minutes * 60 * rate)
        with sf.SoundFile(src, "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
            for start in range(0, total, len(x)):
                f.write(x[: min(len(x), total - start)])
        code = CHILD.format(src=str(ROOT / "src"), src_file=str(src), dst_file=str(dst))
        env = dict(os.environ, VOICEBOX_THREADS="1", OMP_NUM_THREADS="1")
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result["output_frames_equal"] = sf.info(str(dst)).frames == total
    result["minutes"] = minutes
    result["rtf_cpu"] = round(result["cpu_s"] / result["duration_s"], 4)
    result["rtf_wall"] = round(result["wall_s"] / result["duration_s"], 4)
    result["maxrss_mb"] = round(result["maxrss_mb"], 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 dB only, no voicebank, 2 min file")
    parser.add_argument("--hour-minutes", type=float, default=60.0, help="length of the long file")
    parser.add_argument(
        "--parts", default="quality,overhead,long", help="comma list; others kept from the last run"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file to update")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    from conftest import synthesise

    speech = synthesise(TEXT)
    clean(Audio(speech.samples[:, :48_000], speech.rate), "dfn3")  # load engines once
    clean(Audio(speech.samples[:, :48_000], speech.rate), "rnnoise")
    clean(Audio(speech.samples[:, :48_000], speech.rate), "gate")
    results: dict[str, object] = json.loads(args.out.read_text()) if args.out.exists() else {}
    results["machine"] = f"{os.cpu_count()} CPUs, 1 engine thread, load {os.getloadavg()[0]:.1f}"
    results["default_strength_db"] = denoise.DEFAULT_STRENGTH
    if args.quick:
        global SNRS
        SNRS = (5.0,)
    if "quality" in parts:
        results["generated"] = generated(speech)
        results["voicebank_demand"] = "skipped: --quick" if args.quick else voicebank()
    if "overhead" in parts:
        results["dfn3_overhead"] = overhead(speech, 30.0)
        print(json.dumps(results["dfn3_overhead"]), flush=True)
    if "long" in parts:
        minutes = 2.0 if args.quick else args.hour_minutes
        results["long_file"] = long_file_memory(speech, minutes)
        print(json.dumps(results["long_file"]), flush=True)
    results["bench_maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
