"""Turn a batch INPUT (folder, glob, archive, or CSV/JSONL manifest) into a list of work items.

Each item names its input file (or text), its output path relative to OUT_DIR (mirroring the input
tree, never colliding) and its options: job-wide defaults overlaid with the manifest row's own.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..audio import READ_EXTS, STREAM_EXTS, WRITE_EXTS
from ..errors import InputError
from ..options import TaskOptions, parse_text, specs

TEXT_EXTS = {".txt"}
TEXT_TASKS = ("read", "read_like")
"""Tasks whose items are texts to read (a 'text' column, or .txt files), not recordings."""
MANIFEST_EXTS = {".csv", ".jsonl", ".ndjson"}
ARCHIVE_EXTS = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
PATH_KEYS = ("path", "input", "file", "audio")


def _text(value: Any) -> str:  # noqa: ANN401
    return str(value)


def _words(value: Any) -> list[str]:  # noqa: ANN401
    """A list of strings: a JSON list, or one string split at ';'."""
    if isinstance(value, str):
        value = json.loads(value) if value.strip().startswith("[") else value.split(";")
    if not isinstance(value, list):
        raise ValueError("expected a list of words")
    return [str(v).strip() for v in value if str(v).strip()]


def _pairs(value: Any) -> list[list[str]]:  # noqa: ANN401
    """A list of (a, b) pairs: a JSON list of pairs, or 'a=>b; c=>d'."""
    if isinstance(value, str):
        if value.strip().startswith("["):
            value = json.loads(value)
        else:
            value = [part.split("=>", 1) for part in value.split(";") if part.strip()]
    if not isinstance(value, list):
        raise ValueError("expected a list of pairs")
    pairs = []
    for pair in value:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ValueError(f"{pair!r} is not a pair; write 'old=>new'")
        pairs.append([str(pair[0]).strip(), str(pair[1])])
    return pairs


def task_options() -> dict[str, type[TaskOptions]]:
    """Each batch task's options dataclass (declared beside the task)."""
    from ..tasks.options import (
        CleanOptions,
        EditOptions,
        ReadLikeOptions,
        ReadOptions,
        TranscribeOptions,
    )

    return {
        "clean": CleanOptions,
        "read": ReadOptions,
        "read_like": ReadLikeOptions,
        "transcribe": TranscribeOptions,
        "edit": EditOptions,
    }


def _columns(cls: type[TaskOptions]) -> dict[str, Callable[[Any], Any]]:
    """A manifest column per option of `cls`, converting a cell to the option's type."""
    return {spec.name: (lambda value, spec=spec: parse_text(spec, value)) for spec in specs(cls)}


def _schemas() -> dict[str, dict[str, Callable[[Any], Any]]]:
    built = {task: _columns(cls) for task, cls in task_options().items()}
    built["read"] = {"text": _text, **built["read"]}
    built["read_like"] = {"text": _text, "reference": _text, **built["read_like"]}
    built["transcribe"]["task"] = _text  # the old spelling of translate: a 'task' of translate
    edit = built["edit"]
    edit.update(replace=_pairs, delete=_words, insert_after=_pairs)  # 'a=>b;c=>d' or JSON lists
    del edit["exclude_voices"]  # the library's own: no column
    for task in CLONING_TASKS:  # batch's own, for speaking in a recorded person's voice
        built[task].update(dict.fromkeys(("consent", *CONSENT_PATHS), _text))
    return {task: {**columns, "format": _text} for task, columns in built.items()}


CONSENT_PATHS = ("consent_file", "consent_audio")
"""The consent options naming files."""
FILE_OPTIONS = ("reference", *CONSENT_PATHS)
"""Options naming files: a manifest's are relative to the manifest."""
CLONING_TASKS = ("edit", "read_like")
"""Tasks that may speak in a recorded person's voice, so take the consent options."""
OPTIONS: dict[str, dict[str, Callable[[Any], Any]]] = _schemas()


@dataclass
class Item:
    """One unit of work: an input (file or text), an output path under OUT_DIR, its options."""

    output: str
    source: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The item's identity in the job state: its output path relative to OUT_DIR."""
        return self.output

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for worker processes and Ray."""
        return {"output": self.output, "source": self.source, "options": self.options}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Item:
        """The inverse of `to_dict`."""
        return cls(data["output"], data.get("source"), dict(data.get("options") or {}))


def parse_options(task: str, raw: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate and convert one set of options for `task`; unknown names are an error, and a
    value the task's options refuse (bounds, choices) is refused here, before any work."""
    schema = OPTIONS[task]
    options = {}
    for name, value in raw.items():
        if value is None or (isinstance(value, str) and value == "" and name != "text"):
            continue
        if name not in schema:
            known = ", ".join(sorted(schema))
            raise InputError(f"{where}: unknown option '{name}' for {task}; known: {known}")
        try:
            options[name] = schema[name](value)
        except (ValueError, TypeError) as exc:
            raise InputError(f"{where}: bad value for '{name}': {exc}") from None
    if "format" in options:
        options["format"] = _check_format(task, options["format"], where)
    cls = task_options().get(task)
    if cls is not None:
        given = {k: v for k, v in options.items() if k in cls.names()}
        try:
            cls.from_mapping(given)
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
    return options


def _check_format(task: str, fmt: str, where: str) -> str:
    fmt = fmt.lower().lstrip(".")
    from ..tasks.transcribe import FORMATS as TRANSCRIPT_FORMATS

    allowed = {
        "transcribe": set(TRANSCRIPT_FORMATS),
        "clean": {e[1:] for e in STREAM_EXTS},
        "read": {e[1:] for e in WRITE_EXTS},
        "read_like": {e[1:] for e in WRITE_EXTS},
        "edit": {e[1:] for e in WRITE_EXTS},
    }[task]
    if fmt not in allowed:
        raise InputError(
            f"{where}: format '{fmt}' for {task}; use one of {', '.join(sorted(allowed))}"
        )
    return fmt


def output_suffix(task: str, source: str | None, options: dict[str, Any]) -> str:
    """The extension an item's output gets: its `format`, else one that suits the task and input."""
    if options.get("format"):
        return "." + options["format"]
    if task == "transcribe":
        return ".json"
    ext = Path(source).suffix.lower() if source else ""
    if task == "clean":
        return ext if ext in STREAM_EXTS else ".wav"
    if task == "edit":
        return ext if ext in WRITE_EXTS else ".wav"
    return ".wav"


def is_archive(path: Path) -> bool:
    """True for the archive types batch can read (.zip and tar in its usual compressions)."""
    return path.is_file() and path.name.lower().endswith(ARCHIVE_EXTS)


def plan(
    task: str,
    source: str,
    out_dir: Path,
    defaults: dict[str, Any] | None = None,
    staging: Path | None = None,
) -> list[Item]:
    """Every item of a batch, in a stable order, with unique output paths.

    `source` is a folder (searched recursively), a glob, a single file, a .zip/.tar archive
    (extracted into `staging`) or a CSV/JSONL manifest with one item per row.
    """
    if task not in OPTIONS:
        raise InputError(f"unknown batch task '{task}'; use one of {', '.join(OPTIONS)}")
    defaults = parse_options(task, defaults or {}, "options")
    out_dir = Path(out_dir).resolve()
    path = Path(source)
    wanted = TEXT_EXTS if task in TEXT_TASKS else set(READ_EXTS)
    if path.exists():
        path = path.resolve()
        if path.is_dir():
            # An output folder inside the input is not input; one above it must not hide it.
            skip = out_dir if _inside(out_dir, path) else None
            root, files = path, list(scan(path, wanted, skip=skip))
        elif path.suffix.lower() in MANIFEST_EXTS:
            return _from_manifest(task, path, out_dir, defaults)
        elif is_archive(path):
            if staging is None:
                raise InputError(f"{path}: archives need a staging folder")
            root = _extract(path, staging / _archive_stem(path), wanted)
            files = list(scan(root, wanted, skip=None))
        elif path.suffix.lower() in wanted:
            root, files = path.parent, [path]
        else:
            kinds = "a folder, a glob, a .zip/.tar archive, a .csv/.jsonl manifest"
            raise InputError(f"{path}: not something batch {task} can read; give {kinds}")
    elif any(ch in source for ch in "*?["):
        matches = sorted(glob.glob(source, recursive=True))
        files = [
            Path(m).resolve()
            for m in matches
            if Path(m).is_file() and Path(m).suffix.lower() in wanted
        ]
        if not files:
            raise InputError(f"no {_kind(task)} files match '{source}'")
        root = Path(os.path.commonpath([str(f.parent) for f in files]))
        if _inside(out_dir, root):
            files = [f for f in files if not _inside(f, out_dir)]
    else:
        from ..audio import missing

        raise InputError(missing(source))  # a symlink loop or broken link is named as such
    if not files:
        raise InputError(f"{source}: no {_kind(task)} files found (looked for {_exts(wanted)})")
    items = []
    for f in sorted(set(files)):
        options = dict(defaults)
        if task in TEXT_TASKS:
            options.setdefault("text", _read_text(f))
        items.append(Item(f.relative_to(root).as_posix(), str(f), options))
    return name_outputs(task, items)


def _kind(task: str) -> str:
    return "text (.txt)" if task in TEXT_TASKS else "audio"


def _exts(exts: set[str]) -> str:
    return " ".join(sorted(exts))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def scan(root: Path, wanted: set[str], skip: Path | None = None) -> Iterator[Path]:
    """Files under `root` with a wanted extension, skipping hidden names and `skip`."""
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and not (skip and _inside(here / d, skip))
        )
        for name in sorted(names):
            if not name.startswith(".") and Path(name).suffix.lower() in wanted:
                candidate = here / name
                if candidate.is_file():
                    yield candidate


def _read_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8-sig").strip()
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    return text


def name_outputs(task: str, items: list[Item], first: int = 2) -> list[Item]:
    """Turn mirrored input paths into output names: the task's suffix, unique even on collisions
    (case-insensitively; an input whose suffix changes keeps its old one in the name, then
    `-N` from `first` on). The one folder planner: `voicebox clean IN... -o DIR` names its
    outputs here too (with first=1)."""
    proposed = []
    for item in items:
        rel = PurePosixPath(item.output)
        proposed.append(str(rel.with_suffix(output_suffix(task, item.source, item.options))))
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(proposed):
        groups.setdefault(name.casefold(), []).append(i)
    for members in groups.values():
        if len(members) < 2:
            continue
        for i in members:
            rel = PurePosixPath(items[i].output)
            if rel.suffix.lower() != PurePosixPath(proposed[i]).suffix.lower():
                # a.mp3 and a.wav both cleaned to wav: the one that changes suffix keeps its old one
                proposed[i] = str(rel) + PurePosixPath(proposed[i]).suffix
    taken: set[str] = set()
    for i, name in enumerate(proposed):
        candidate, n = name, first - 1
        while candidate.casefold() in taken:
            n += 1
            p = PurePosixPath(name)
            candidate = str(p.with_name(f"{p.stem}-{n}{p.suffix}"))
        taken.add(candidate.casefold())
        items[i].output = candidate
    return items


def _from_manifest(task: str, path: Path, out_dir: Path, defaults: dict[str, Any]) -> list[Item]:
    rows = list(_manifest_rows(path))
    if not rows:
        raise InputError(f"{path}: manifest has no rows")
    items: list[Item] = []
    explicit: list[tuple[int, str]] = []
    for line, row in rows:
        where = f"{path.name} line {line}"
        row = dict(row)
        source_value = next((row.pop(k) for k in PATH_KEYS if row.get(k) not in (None, "")), None)
        for k in PATH_KEYS:
            row.pop(k, None)
        output = row.pop("output", None) or row.pop("id", None)
        own = parse_options(task, row, where)
        for key in FILE_OPTIONS:  # a file named in a row is relative to the manifest
            if key in own and not Path(own[key]).expanduser().is_absolute():
                own[key] = str((path.parent / Path(own[key]).expanduser()).resolve())
        options = {**defaults, **own}
        source = None
        if source_value is not None:
            src = Path(str(source_value)).expanduser()
            source = str((path.parent / src).resolve() if not src.is_absolute() else src)
        if task in TEXT_TASKS:
            if source and "text" not in row:
                options["text"] = _read_text(Path(source))
            if not options.get("text", "").strip():
                raise InputError(f"{where}: {task} needs a 'text' (or a path to a .txt file)")
        elif source is None:
            raise InputError(f"{where}: no input file; give a 'path' column")
        if output:
            rel = _safe_relative(str(output), where)
            if not PurePosixPath(rel).suffix:
                rel += output_suffix(task, source, options)
            explicit.append((len(items), rel))
            items.append(Item(rel, source, options))
        elif source:
            base = Path(source)
            try:
                rel = base.relative_to(path.parent).as_posix()
            except ValueError:
                rel = base.name
            items.append(Item(rel, source, options))
        else:
            items.append(Item(f"item-{line:05d}", None, options))
    seen: dict[str, int] = {}
    for index, rel in explicit:
        if rel.casefold() in seen:
            raise InputError(f"{path.name}: two rows write the same output '{rel}'")
        seen[rel.casefold()] = index
    derived = [i for i in range(len(items)) if i not in {e[0] for e in explicit}]
    named = name_outputs(task, [items[i] for i in derived])
    for i, item in zip(derived, named, strict=True):
        candidate, n = item.output, 1
        while candidate.casefold() in seen:
            n += 1
            p = PurePosixPath(item.output)
            candidate = str(p.with_name(f"{p.stem}-{n}{p.suffix}"))
        seen[candidate.casefold()] = i
        items[i].output = candidate
    return items


def _manifest_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path}: manifest is not UTF-8 text") from None
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames:
            raise InputError(f"{path}: CSV manifest has no header row")
        for row in reader:
            if None in row:
                raise InputError(f"{path.name} line {reader.line_num}: more cells than columns")
            if any((v or "").strip() for v in row.values()):
                yield reader.line_num, {k.strip(): v for k, v in row.items() if k}
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path.name} line {number}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise InputError(f"{path.name} line {number}: each line must be a JSON object")
        yield number, row


def _safe_relative(value: str, where: str) -> str:
    rel = PurePosixPath(value.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts or not rel.parts or rel.name.startswith("."):
        raise InputError(f"{where}: output '{value}' must be a plain path inside the output folder")
    return str(rel)


def _archive_stem(path: Path) -> str:
    name = path.name
    for ext in sorted(ARCHIVE_EXTS, key=len, reverse=True):
        if name.lower().endswith(ext):
            return name[: -len(ext)] or "archive"
    return name


def _safe_member(name: str) -> PurePosixPath | None:
    rel = PurePosixPath(name.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        return None
    if any(part.startswith(".") for part in rel.parts) or re.match(r"^[A-Za-z]:", name):
        return None
    return rel


def _extract(archive: Path, dest: Path, wanted: set[str]) -> Path:
    """Extract the wanted members (safe relative paths only) into `dest`; reuse what is there."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    rel = _safe_member(info.filename)
                    if info.is_dir() or rel is None or rel.suffix.lower() not in wanted:
                        continue
                    stamp = time.mktime((*info.date_time, 0, 0, -1))
                    with zf.open(info) as src:
                        _stage(src, dest / rel, info.file_size, stamp)
        else:
            with tarfile.open(archive) as tf:
                for member in tf:
                    rel = _safe_member(member.name)
                    if not member.isfile() or rel is None or rel.suffix.lower() not in wanted:
                        continue
                    src = tf.extractfile(member)
                    if src is not None:
                        with src:
                            _stage(src, dest / rel, member.size, float(member.mtime))
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise InputError(f"{archive}: cannot read archive ({exc})") from None
    return dest


def _stage(src: Any, target: Path, size: int, stamp: float) -> None:  # noqa: ANN401 - binary file
    """Copy one archive member into place atomically, stamped with the member's time.

    A staged copy with the member's size and time is reused, so a rerun finds its inputs unchanged.
    """
    if target.is_file():
        st = target.stat()
        if st.st_size == size and int(st.st_mtime) == int(stamp):
            return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        os.utime(tmp, (stamp, stamp))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
