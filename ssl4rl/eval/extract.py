"""Which option a response chose, with VLMEvalKit's exact-matching rules and nothing looser.

Order: the text of the last `<answer>...</answer>` block (else the whole response), then
1. an option letter standing alone once punctuation `.()[],:;!*#{}` becomes space (`B`,
   `(B)`, `Answer: B`, `B. a cat`), accepted only when exactly one option letter appears;
2. an option's text, accepted only when exactly one option's text appears in the answer and
   the answer is not more than twice as long as all option texts together.
Anything else is unparseable: reported and scored wrong, never guessed.

>>> options = {"A": "a cat", "B": "a dog", "C": "a bird"}
>>> [extract_choice(r, options) for r in ("<answer>B</answer>", "(C)", "Answer: A.", "<answer>a dog</answer>")]
['B', 'C', 'A', 'B']
>>> extract_choice("A or B.", options) is None, extract_choice("no idea", options) is None
(True, True)
"""

from __future__ import annotations

from ssl4rl.tasks.common import extract_answer

_PUNCTUATION = str.maketrans({c: " " for c in ".()[],:;!*#{}"})


def infer_letter(text: str, options: dict[str, str]) -> str | None:
    tokens = set(text.translate(_PUNCTUATION).split())
    found = [letter for letter in options if letter in tokens]
    return found[0] if len(found) == 1 else None


def infer_text(text: str, options: dict[str, str]) -> str | None:
    answer = text.lower()
    if len(answer) > 2 * sum(len(str(v)) for v in options.values()):
        return None
    found = [letter for letter, option in options.items() if str(option).lower() in answer]
    return found[0] if len(found) == 1 else None


def extract_choice(response: str, options: dict[str, str]) -> str | None:
    if not isinstance(response, str):
        return None
    text = extract_answer(response)
    text = response if text is None else text
    return infer_letter(text, options) or infer_text(text, options)
