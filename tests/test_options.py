"""Each task's options are declared once (voicebox.tasks.options): the CLI flags, the server's
request fields and batch's flags and manifest columns are built from that declaration, agree
with the task functions' keyword arguments, and refuse the same values with the same words."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import typer.main

from voicebox.errors import InputError
from voicebox.options import specs
from voicebox.tasks.options import CleanOptions, ReadLikeOptions, ReadOptions, TranscribeOptions


def _flags(*path: str) -> set[str]:
    """The long flags of a CLI command, e.g. _flags("batch", "clean")."""
    from voicebox.cli import app

    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return {opt for param in command.params for opt in param.opts if opt.startswith("--")}


def _declared(cls: type) -> set[str]:
    return {spec.flag for spec in specs(cls)}


@pytest.mark.parametrize(
    ("cls", "command"),
    [
        (CleanOptions, ("clean",)),
        (CleanOptions, ("batch", "clean")),
        (ReadOptions, ("read",)),
        (ReadOptions, ("batch", "read")),
        (TranscribeOptions, ("transcribe",)),
        (TranscribeOptions, ("batch", "transcribe")),
        (ReadLikeOptions, ("batch", "read-like")),
        (ReadLikeOptions, ("read",)),
    ],
)
def test_every_option_is_a_flag(cls, command):
    assert _declared(cls) <= _flags(*command), _declared(cls) - _flags(*command)


def test_server_and_batch_take_the_declared_options_with_their_bounds():
    from voicebox.batch.manifest import OPTIONS
    from voicebox.server.work import CleanParams, CloneParams, SpeechParams, TranscribeParams

    for cls, model, task in (
        (CleanOptions, CleanParams, "clean"),
        (ReadOptions, SpeechParams, "read"),
        (TranscribeOptions, TranscribeParams, "transcribe"),
        (ReadLikeOptions, CloneParams, "read_like"),
    ):
        served = set(cls.names()) - ({"translate"} if task == "transcribe" else set())
        assert served <= set(model.model_fields), (task, served - set(model.model_fields))
        assert set(cls.names()) <= set(OPTIONS[task]), task
        schema = model.model_json_schema()["properties"]
        for spec in specs(cls):
            if spec.name not in served:
                continue
            field = model.model_fields[spec.name]
            assert field.default == spec.default, spec.name
            bounds = {type(m).__name__: m for m in field.metadata}
            if spec.ge is not None:
                assert bounds["Ge"].ge == spec.ge, spec.name
            if spec.le is not None:
                assert bounds["Le"].le == spec.le, spec.name
            assert schema[spec.name]["description"] == spec.help


def test_task_functions_take_every_option():
    from voicebox.tasks import clean, read

    for fn in (clean.clean, clean.clean_file):
        assert set(CleanOptions.names()) <= set(inspect.signature(fn).parameters), fn
    for fn in (read.read, read.read_stream):
        assert set(ReadOptions.names()) <= set(inspect.signature(fn).parameters), fn


def test_bounds_agree_with_the_engines():
    from voicebox.engines import tts
    from voicebox.tasks import read

    speed = next(s for s in specs(ReadOptions) if s.name == "speed")
    pitch = next(s for s in specs(ReadOptions) if s.name == "pitch")
    assert (speed.ge, speed.le) == (tts.MIN_SPEED, tts.MAX_SPEED)
    assert (pitch.ge, pitch.le) == (-read.MAX_PITCH, read.MAX_PITCH)


def test_one_refusal_for_every_front_end():
    from voicebox.batch.manifest import parse_options

    with pytest.raises(InputError, match=r"^strength must be a number in dB >= 0, got -3"):
        CleanOptions(strength=-3.0)
    with pytest.raises(InputError, match=r"loudness target must be between -70 and 0 LUFS"):
        CleanOptions(loudness=5.0)
    with pytest.raises(InputError, match=r"unknown denoise engine 'magic'"):
        CleanOptions(engine="magic")
    with pytest.raises(InputError, match=r"^row 2: strength must be a number in dB >= 0"):
        parse_options("clean", {"strength": "-3"}, "row 2")
    with pytest.raises(InputError, match="speed must be between 0.25 and 4"):
        ReadOptions(speed=9.0)
    assert parse_options("clean", {"dehum": "yes", "strength": "6"}, "row") == {
        "dehum": True,
        "strength": 6.0,
    }
    assert parse_options("read", {"blend": '{"a": 0.5}'}, "row") == {"blend": {"a": 0.5}}


def test_the_cli_refuses_as_the_task_does(tmp_path):
    from typer.testing import CliRunner

    from voicebox.cli import app

    run = CliRunner().invoke(app, ["clean", str(tmp_path), "-o", "x", "--strength", "-3"])
    assert isinstance(run.exception, InputError) and "dB >= 0" in str(run.exception)
    run = CliRunner().invoke(app, ["batch", "clean", str(tmp_path), "-o", "x", "--loudness", "9"])
    assert isinstance(run.exception, InputError) and "LUFS" in str(run.exception)


EDIT_LIBRARY_ONLY = {"exclude_voices"}
"""EditOptions no front end offers (a library caller's knob)."""


def test_edit_options_reach_every_front_end():
    from voicebox.batch.manifest import OPTIONS, task_options
    from voicebox.server.work import EditParams
    from voicebox.tasks import edit
    from voicebox.tasks.options import EditOptions

    offered = set(EditOptions.names()) - EDIT_LIBRARY_ONLY
    cli = {s.flag for s in specs(EditOptions) if s.name in offered} - {"--transcript"}
    assert cli <= _flags("edit"), cli - _flags("edit")  # --transcript is a file there
    assert {"--replace", "--delete", "--insert-after", "--occurrence", "--voice"} <= _flags(
        "batch", "edit"
    )
    assert task_options()["edit"] is EditOptions
    assert offered <= set(OPTIONS["edit"]) and not EDIT_LIBRARY_ONLY & set(OPTIONS["edit"])
    assert offered <= set(EditParams.model_fields)
    schema = EditParams.model_json_schema()["properties"]
    for spec in specs(EditOptions):
        if spec.name in offered:
            assert schema[spec.name]["description"] == spec.help, spec.name
    assert EditParams().delete == [] and EditParams(replace=[["a", "b"]]).replace == [("a", "b")]
    for fn in (edit.edit, edit.edit_file):
        assert "options" in inspect.signature(fn).parameters, fn


def test_edit_refuses_alike_everywhere(tmp_path):
    from typer.testing import CliRunner

    from voicebox.audio import Audio
    from voicebox.batch.manifest import Item, parse_options
    from voicebox.batch.worker import ADAPTERS
    from voicebox.cli import app
    from voicebox.server.apierror import ApiError
    from voicebox.server.work import EditParams, edit_work
    from voicebox.tasks.edit import edit
    from voicebox.tasks.options import EditOptions

    silence = Audio(np.zeros((1, 1600), np.float32), 16000)
    unknown = "unknown engine 'magic'; use one of auto, stock, voicebox"
    with pytest.raises(InputError, match=f"^{unknown}$"):
        EditOptions(engine="magic")
    with pytest.raises(InputError, match=f"^row 2: {unknown}$"):
        parse_options("edit", {"engine": "magic", "delete": "x"}, "row 2")
    with pytest.raises(InputError, match=f"^{unknown}$"):
        edit(silence, delete=["x"], engine="magic")
    with pytest.raises(ApiError) as refused:
        edit_work(EditParams(delete=["x"], engine="magic"), None, None, None)
    assert (refused.value.status, refused.value.message) == (400, unknown)
    run = CliRunner().invoke(app, ["edit", str(tmp_path / "a.wav"), "--plan", "--engine", "magic"])
    assert isinstance(run.exception, InputError) and str(run.exception) == unknown

    with pytest.raises(InputError) as nothing:
        EditOptions().require_ops()
    said = str(nothing.value)
    assert said.startswith("nothing to edit")
    with pytest.raises(InputError, match=f"^{said}$"):
        edit(silence)
    with pytest.raises(InputError, match=f"^{said}$"):
        ADAPTERS["edit"](Item("out.wav", str(tmp_path / "a.wav")), tmp_path / "out.wav")
    with pytest.raises(ApiError) as refused:
        edit_work(EditParams(), None, None, None)
    assert refused.value.message == said
    with pytest.raises(InputError, match="has no words to speak"):
        parse_options("edit", {"replace": "honey=>!!"}, "row")
    with pytest.raises(InputError, match="occurrence must be a number >= 1, got 0"):
        edit(silence, delete=["x"], occurrence=0)
    with pytest.raises(InputError, match="unknown option 'bogus'"):
        edit(silence, delete=["x"], bogus=1)
