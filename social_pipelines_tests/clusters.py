"""Grapheme clusters of several code points each, for the core's and the sandbox's counting.

NFC composes none of them into a single code point, so only real grapheme segmentation
counts each as one character, as Mastodon does.
"""

from __future__ import annotations

CLUSTERS = {
    "zwj-family": "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
    "flag": "\U0001f1eb\U0001f1f7",
    "combining-marks": "q\u0307\u0323",
    "hangul-jamo": "\u1112\u119e\u11ab",
    "keycap": "1\ufe0f\u20e3",
}
