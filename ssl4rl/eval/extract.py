"""Which option a response chose: VLMEvalKit's exact matcher, and ours on the `<answer>` block.

VLMEvalKit (open-compass/VLMEvalKit, `vlmeval/utils/matching_util.py::can_infer`, as of commit
e8e78f05, August 2026; its last rule changes are c3371551, 2025-08-04, and a67ace50,
2026-06-17) reads the whole response and, without an LLM judge, applies in order:
1. a refusal phrase from its short list ("Cannot determine the answer", ...) -> no answer;
2. punctuation `.()[],:;!*#{}` becomes space and the text is split into words; exactly one
   option letter among the words, and its first occurrence is one of the last four words
   (`index > len(words) - 5`) -> that letter; no letter but a word `Z` -> no answer;
3. the phrase "answer is X" (X in A-D, any case, optional `**`) -> X;
4. the text is at most twice as long as all option texts together and exactly one option's
   text occurs in it (plain substring, lower case) -> that option.
Anything else is a failure, scored wrong. `matcher="vlmevalkit"` reproduces exactly this.

`matcher="ssl4rl"` (the default) is the same rules with two changes: it reads the last
`<answer>...</answer>` block when there is one (the SSL4RL prompt asks for it; VLMEvalKit's
rule 2 misses most such answers and relies on its judge), and a refusal never becomes an
option: more refusal phrases ("I cannot answer", "unable to determine", ...) give no answer,
and option texts match whole words only ("no" is not found inside "cannot").

>>> options = {"A": "a cat", "B": "a dog", "C": "a bird"}
>>> [extract_choice(r, options) for r in ("<answer>B</answer>", "(C)", "Answer: A.", "<answer>a dog</answer>")]
['B', 'C', 'A', 'B']
>>> extract_choice("A or B.", options) is None, extract_choice("no idea", options) is None
(True, True)
>>> yes_no = {"A": "yes, there is one", "B": "no"}
>>> extract_choice("I cannot answer.", yes_no), extract_choice("I cannot answer.", yes_no, matcher="vlmevalkit")
(None, 'B')
"""

from __future__ import annotations

import re

from ssl4rl.tasks.common import extract_answer

MATCHERS = ("ssl4rl", "vlmevalkit")
_PUNCTUATION = str.maketrans({c: " " for c in ".()[],:;!*#{}"})
# VLMEvalKit's list, verbatim (case-sensitive substrings).
VLMEVALKIT_REFUSALS = (
    "Sorry, I can't help with images of people yet.", "I can't process this file.",
    "I'm sorry, but without the image provided", "Cannot determine the answer",
)  # fmt: skip
# Ours in addition (lower case, on the lower-cased answer).
REFUSALS = (
    "cannot answer", "can't answer", "cannot determine", "can't determine", "cannot be determined",
    "unable to answer", "unable to determine", "cannot tell", "can't tell", "not possible to determine",
    "impossible to determine", "i don't know", "i do not know", "none of the options", "none of the above",
    "cannot see", "can't see", "no image",
)  # fmt: skip
_ANSWER_IS = re.compile(r"(?i)(?:correct\s+)?answer\s+is\s+\**([ABCD])\**")


def infer_letter(text: str, options: dict[str, str]) -> str | None:
    """Rule 2: exactly one option letter among the words, among the last four of them; 'Z'
    (VLMEvalKit's "no answer" letter) when no option letter but a word Z appears."""
    words = text.translate(_PUNCTUATION).split()
    found = [letter for letter in options if letter in words]
    if len(found) == 1 and words.index(found[0]) > len(words) - 5:
        return found[0]
    return "Z" if not found and "Z" in words and "Z" not in options else None


def infer_answer_is(text: str, options: dict[str, str]) -> str | None:
    """Rule 3: 'the answer is B'."""
    match = _ANSWER_IS.search(text)
    return match.group(1).upper() if match and match.group(1).upper() in options else None


def infer_text(text: str, options: dict[str, str], whole_words: bool = False) -> str | None:
    """Rule 4: exactly one option's text in a short enough answer."""
    answer = text.lower()
    if len(answer) > 2 * sum(len(str(v)) for v in options.values()):
        return None
    if whole_words:
        found = [k for k, v in options.items() if str(v).strip() and re.search(rf"(?<!\w){re.escape(str(v).lower())}(?!\w)", answer)]
    else:
        found = [k for k, v in options.items() if str(v).lower() in answer]
    return found[0] if len(found) == 1 else None


def is_refusal(text: str, ours: bool) -> bool:
    if any(phrase in text for phrase in VLMEVALKIT_REFUSALS):
        return True
    return ours and any(phrase in text.lower().replace("\u2019", "'") for phrase in REFUSALS)


def extract_choice(response: str, options: dict[str, str], matcher: str = "ssl4rl") -> str | None:
    """The chosen option letter, or None (unparseable or a refusal: scored wrong)."""
    if not isinstance(response, str):
        return None
    ours = matcher != "vlmevalkit"
    text = response
    if ours:
        block = extract_answer(response)
        text = response if block is None else block
    if is_refusal(text, ours):
        return None
    letter = infer_letter(text, options) or infer_answer_is(text, options) or infer_text(text, options, whole_words=ours)
    return None if letter == "Z" else letter
