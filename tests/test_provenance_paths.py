"""Every generating path carries the watermark: reading (whole and streamed) and the generated span of an edit."""

from __future__ import annotations

import numpy as np

from helpers import synthesise
from voicebox.audio import Audio
from voicebox.provenance import detect
from voicebox.tasks.read import read, read_stream

TEXT = (
    "The weather is warm and sunny today. We will walk to the park after lunch, and then go home."
)


def test_read_output_is_marked():
    speech = read(TEXT)
    found = detect(speech.audio)
    assert found.marked and found.payload is not None


def test_streamed_sentences_are_marked():
    chunks = [chunk for chunk, _ in read_stream(TEXT)]
    joined = Audio(np.concatenate([c.samples[0] for c in chunks]), chunks[0].rate)
    assert detect(joined).marked


def test_unmarked_speech_is_not_flagged():
    assert not detect(synthesise(TEXT)).marked


def test_edit_marks_only_the_generated_span():
    from voicebox.tasks.edit import edit

    recording = synthesise("The old man walked slowly to the market. He bought fresh bread today.")
    result = edit(
        recording,
        replace=[("fresh bread", "a large basket of ripe red apples and fresh green pears")],
        exclude_voices=["piper_joe"],
    )
    step = next(s for s in result.plan.steps if s.generated)
    rate = result.audio.rate
    a = int(step.out_start * rate)
    head = recording.samples[:, :a]
    np.testing.assert_array_equal(result.audio.samples[:, :a], head)  # untouched: bit-identical
    found = detect(result.audio)
    assert found.marked
    assert any(start < step.out_end and end > step.out_start for start, end in found.ranges)
    assert not detect(Audio(head, rate)).marked
