"""The phone inventory the model speaks in: CMU ARPAbet without stress, plus silence and two specials.

Index 0 pads batches; index 1 is the null phone used for classifier-free guidance (phones dropped).
"""

from __future__ import annotations

PAD = "<pad>"
NULL = "<null>"
SIL = "SIL"
ARPABET = (
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH"
).split()
PHONES: tuple[str, ...] = (PAD, NULL, SIL, *ARPABET)
PHONE_ID: dict[str, int] = {p: i for i, p in enumerate(PHONES)}
N_PHONES = len(PHONES)
