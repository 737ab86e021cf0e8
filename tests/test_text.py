"""Text front end: English normalisation, sentence splitting and guards against hostile text."""

from __future__ import annotations

import pytest

from voicebox.errors import InputError
from voicebox.text import (
    MAX_SENTENCE_CHARS,
    MAX_TEXT_CHARS,
    MAX_WORD_CHARS,
    iter_sentences,
    normalize,
    sentences,
    split_sentences,
)


def said(text: str) -> str:
    """Normalised text, lower case, hyphens as spaces, for comparing spoken words."""
    return normalize(text).lower().replace("-", " ")


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        # cardinals, decimals, negatives
        ("I have 42 apples.", "i have forty two apples."),
        (
            "1,234,567",
            "one million two hundred and thirty four thousand five hundred and sixty seven",
        ),
        ("pi is 3.14", "pi is three point one four"),
        ("it was -5 outside", "it was minus five outside"),
        ("0", "zero"),
        # ordinals
        (
            "She came 1st, he came 22nd, they came 103rd.",
            "she came first, he came twenty second, they came one hundred and third.",
        ),
        # years and decades
        (
            "In 1999 and 2005 and 2024.",
            "in nineteen ninety nine and two thousand and five and twenty twenty four.",
        ),
        ("the 1990s and the '80s", "the nineteen nineties and the eighties"),
        # dates
        ("on 2024-03-15", "on march fifteenth, twenty twenty four"),
        ("on March 3rd, 2021", "on march third, twenty twenty one"),
        ("on 4 July 1776", "on the fourth of july, seventeen seventy six"),
        ("on 12/25/2023", "on december twenty fifth, twenty twenty three"),
        ("due Jan. 5", "due january fifth"),
        # times
        ("at 3:30 pm", "at three thirty p m"),
        ("at 10:05", "at ten oh five"),
        ("at 12:00", "at twelve o'clock"),
        ("at 7am", "at seven a m"),
        ("at 7.30pm", "at seven thirty p m"),
        ("It is 5 p.m.", "it is five p m."),
        ("at 1230am", "at twelve thirty a m"),
        # currency
        ("$5", "five dollars"),
        ("$1", "one dollar"),
        ("$3.50", "three dollars and fifty cents"),
        ("$0.99", "ninety nine cents"),
        ("£20", "twenty pounds"),
        ("€1.01", "one euro and one cent"),
        ("$2.5 million", "two point five million dollars"),
        ("$3M", "three million dollars"),
        ("$1,000", "one thousand dollars"),
        # percentages
        ("50%", "fifty percent"),
        ("3.5 %", "three point five percent"),
        # units
        ("100 km", "one hundred kilometers"),
        ("1 kg", "one kilogram"),
        ("60 mph", "sixty miles per hour"),
        ("21°C", "twenty one degrees celsius"),
        ("70 °F", "seventy degrees fahrenheit"),
        ("3 GB", "three gigabytes"),
        ("2.4 GHz", "two point four gigahertz"),
        ("5 ms", "five milliseconds"),
        # abbreviations
        ("Dr. Smith", "doctor smith"),
        ("Mr. and Mrs. Jones", "mister and missus jones"),
        ("St. Patrick", "saint patrick"),
        ("5 Main St.", "five main street."),
        ("fruit, e.g. apples", "fruit, for example apples"),
        ("now, i.e. today", "now, that is today"),
        ("apples, pears, etc.", "apples, pears, et cetera."),
        ("No. 5", "number five"),
        ("the U.S.A. team", "the u s a team"),
        # URLs and e-mail addresses
        ("see https://www.example.com/docs", "see w w w dot example dot com slash docs"),
        ("visit example.org today", "visit example dot org today"),
        ("mail john.doe@example.com", "mail john dot doe at example dot com"),
        # phone numbers, digit by digit
        ("call 555-123-4567", "call five five five, one two three, four five six seven"),
        ("call (555) 123-4567", "call five five five, one two three, four five six seven"),
        ("+44 20 7946 0958", "plus four four, two zero, seven nine four six, zero nine five eight"),
        # symbols
        ("Tom & Jerry", "tom and jerry"),
        ("2 + 2 = 4", "two plus two equals four"),
        ("#1 fan", "number one fan"),
        ("C# code", "c sharp code"),
        ("v1.2.3", "v one dot two dot three"),
        ("MP3 player", "mp three player"),
        # ranges and fractions
        ("pages 10-20", "pages ten to twenty"),
        ("1/2 cup", "one half cup"),
        ("3/4 mile", "three quarters mile"),
    ],
)
def test_normalize(written: str, spoken: str) -> None:
    assert said(written) == spoken


def test_normalize_leaves_plain_text_and_other_languages_alone() -> None:
    assert normalize("The birch canoe slid on the smooth planks.") == (
        "The birch canoe slid on the smooth planks."
    )
    assert normalize("J'ai 3 pommes.", lang="fr") == "J'ai 3 pommes."


def test_huge_numbers_are_read_digit_by_digit() -> None:
    out = normalize("9" * 30)
    assert out.split() == ["nine"] * 30


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Dr. Smith went home. He paid $3.50 for tea! Was it good? Yes.",
            ["Dr. Smith went home.", "He paid $3.50 for tea!", "Was it good?", "Yes."],
        ),
        ("Pi is 3.14. It never ends.", ["Pi is 3.14.", "It never ends."]),
        (
            "J. K. Rowling wrote it. Then she rested.",
            ["J. K. Rowling wrote it.", "Then she rested."],
        ),
        ("Go to example.com. Then wait.", ["Go to example.com.", "Then wait."]),
        ("Fruit, e.g. apples, is good. Eat it.", ["Fruit, e.g. apples, is good.", "Eat it."]),
        ("Mr. and Mrs. Jones met Prof. Lee.", ["Mr. and Mrs. Jones met Prof. Lee."]),
        ('He said "stop." Then he left.', ['He said "stop."', "Then he left."]),
        ("Apples, pears, etc. Then more.", ["Apples, pears, etc.", "Then more."]),
        ("One paragraph\n\nAnother one", ["One paragraph", "Another one"]),
        ("A line that wraps\nacross two lines.", ["A line that wraps across two lines."]),
        ("No trailing stop", ["No trailing stop"]),
        ("We left at 5 p.m. Then we slept.", ["We left at 5 p.m.", "Then we slept."]),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_split_japanese() -> None:
    assert split_sentences("今日は晴れです。明日は雨ですか？", lang="ja") == [
        "今日は晴れです。",
        "明日は雨ですか?",  # NFKC folds full-width punctuation
    ]


def test_sentences_pair_written_and_spoken() -> None:
    items = sentences("Dr. Smith paid $5. Call 555-123-4567!")
    assert [s.text for s in items] == ["Dr. Smith paid $5.", "Call 555-123-4567!"]
    assert items[0].spoken == "Doctor Smith paid five dollars."


@pytest.mark.parametrize(
    "text", ["", "   ", "\n\n\t", "!!! ??? ...", "### *** ---", "\x00\x01\x02"]
)
def test_wordless_text_is_refused(text: str) -> None:
    with pytest.raises(InputError, match="nothing to read"):
        sentences(text)


def test_non_string_is_refused() -> None:
    with pytest.raises(InputError):
        sentences(b"bytes")  # type: ignore[arg-type]


def test_oversized_text_is_refused_with_advice() -> None:
    with pytest.raises(InputError, match="stream"):
        sentences("word " * (MAX_TEXT_CHARS // 5 + 10))


def test_long_sentence_and_long_token_are_cut() -> None:
    items = sentences("word, " * 400 + "x" * 5000)
    assert len(items) > 5
    assert all(len(s.spoken) <= MAX_SENTENCE_CHARS for s in items)
    assert all(len(w) <= MAX_WORD_CHARS for s in items for w in s.spoken.split())


def test_hostile_unicode_is_cleaned() -> None:
    text = "He\u200bllo\u202e wor\u0301\u0301\u0301\u0301ld\x07!!!!!!"
    out = normalize(text)
    assert out == "Hello world!"


def test_iter_sentences_streams_lines_with_bounded_buffer() -> None:
    from voicebox.text import MAX_PARAGRAPH_CHARS

    pad = "and this padding makes every line long enough to fill the buffer"
    lines = [f"Line {i} is here, {pad}.\n" for i in range(400)]
    assert sum(map(len, lines)) > MAX_PARAGRAPH_CHARS  # one paragraph, flushed in pieces
    out = iter_sentences(iter(lines))
    first = next(out)
    assert first.spoken == f"Line zero is here, {pad}."
    rest = list(out)
    assert len(rest) == 399
    assert rest[-1].text == f"Line 399 is here, {pad}."
    assert [s.text for s in rest] == [line.strip() for line in lines[1:]]


def test_iter_sentences_refuses_a_wordless_stream() -> None:
    with pytest.raises(InputError, match="nothing to read"):
        list(iter_sentences(["   \n", "!!!\n"]))


# ---------------------------------------------------------------- text the way people write it


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        # saint before a capitalised name, street after one
        ("St. James St. is busy.", "saint james street is busy."),
        ("He saw St. Paul's.", "he saw saint paul's."),
        ("They live at 12 Oak St.", "they live at twelve oak street."),
        # local phone numbers digit by digit; round ranges stay ranges
        ("Call 555-0123 now.", "call five five five, zero one two three now."),
        ("Call 555-1234.", "call five five five, one two three four."),
        ("pages 100-1000", "pages one hundred to one thousand"),
        # month abbreviations with a day
        ("On Jan. 5th we met.", "on january fifth we met."),
        ("Feb. 3", "february third"),
        ("Aug. 10th, 2020", "august tenth, twenty twenty"),
        ("Sept. 2nd", "september second"),
        ("Oct. 1", "october first"),
        ("Nov. 11", "november eleventh"),
        ("Dec. 25th", "december twenty fifth"),
        # years, counts of things and ordinals
        ("in 1999", "in nineteen ninety nine"),
        ("1999 was a good year", "nineteen ninety nine was a good year"),
        ("1999 people came", "one thousand nine hundred and ninety nine people came"),
        ("1500 years ago", "one thousand five hundred years ago"),
        ("the 21st time", "the twenty first time"),
        # times, money and percentages together
        (
            "At 3:30 pm it cost $12.50, 15% more.",
            "at three thirty p m it cost twelve dollars and fifty cents, fifteen percent more.",
        ),
    ],
)
def test_normalize_everyday_writing(written: str, spoken: str) -> None:
    assert said(written) == spoken


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("St. James St. is busy.", ["St. James St. is busy."]),
        ("We went to St. Louis. It was fine.", ["We went to St. Louis.", "It was fine."]),
        ("I live on Main St. Then I left.", ["I live on Main St.", "Then I left."]),
        ("On Jan. 5th we met. It rained.", ["On Jan. 5th we met.", "It rained."]),
        (
            "Feb. 3, Aug. 10th, Sept. 2nd, Oct. 1, Nov. 11 and Dec. 25th.",
            ["Feb. 3, Aug. 10th, Sept. 2nd, Oct. 1, Nov. 11 and Dec. 25th."],
        ),
        (
            "Mr. Smith met Dr. Who at Mt. Fuji vs. Rome, etc. and more.",
            ["Mr. Smith met Dr. Who at Mt. Fuji vs. Rome, etc. and more."],
        ),
    ],
)
def test_abbreviations_do_not_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected
