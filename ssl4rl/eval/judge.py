"""The caption judge: CapArena's pairwise prompt (with the human reference), its verdict format,
and two judges that answer it: an OpenAI-compatible chat-completions server or a local model.

The prompt texts are CapArena's (`vlm_as_a_judge.py`, `system_prompt_with_ref` and the
`compare_prompt` with reference), so a judge reads what GPT-4o read for the leaderboard. A
verdict is accepted only in the forms CapArena's scoring script accepts; anything else is a
malformed verdict, recorded with the judge's text and counted, never read as a guess.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

SYSTEM_PROMPT = """
You are a highly capable multimodal AI assistant tasked with evaluating image captions.

Given an image, two candidate captions and one reference caption annotated by human expert, you are require to determine which of the two captions is better.

Below are some guidelines for your reference:

1. **Precision**: The caption should accurately correspond to the content of the image, providing precise information about it. Common examples of imprecision include errors in color, quantity, spatial relationships, or the posture of people.

2. **Informativeness**: Salient information in the image should be reflected in the caption. Since it is impossible to include every detail, you will need to subjectively judge which aspects of the image are important. For instance, describing an otter as "a small animal" is precise, but it is less informative than specifying "an otter".

3. **Hallucination**: Captions that include descriptions of objects or elements that are clearly absent from the image should be significantly penalized.

4. **Attention to detail**: Annotators should pay close attention to the details in the image to distinguish the quality of the descriptions.

5. **Assistive description**: Imagine a visually impaired person asking you to describe the image for them. How would you convey the image to them?

6. **Reverse thinking**: What image does the caption lead us to imagine? Does the caption effectively lead you to imagine the intended image?

7. **Ties are acceptable**: If you find it genuinely difficult to determine which caption is better (e.g., both captions are excellent), marking a tie is acceptable.

While the above guidelines provide a framework, they cannot cover all possible cases. Therefore, we encourage you to make **subjective judgments** based on the specific circumstances and your own reasoning about which caption is better.

**Reference caption**: The reference caption is annotated by a human expert. When you're uncertain about which description is better (e.g., when unsure about specific details in the image), you can use the reference caption to assist your judgment. The content in the reference caption can be considered correct; however, it is not perfect, and descriptions not included in the reference caption can still be reasonable.

### Response Format:
Format your response into two lines as shown below:
Reason: <your thoughts and reasoning process for the judgment>
Judgment: <Caption 1 is better>/<Caption 2 is better>/<Tie>
"""

# The exact strings CapArena's caparena_auto_scores.py counts; it skips any other judgment.
VERDICTS = {
    "Caption 1 is better.": "1", "Caption 1 is better": "1",
    "Caption 2 is better.": "2", "Caption 2 is better": "2",
    "Tie": "tie", "Tie.": "tie",
}  # fmt: skip

# CapArena's sampling: call_llm sends temperature 0.1 (over the 0.5 in the payload), top_p 0.9, 1500 tokens.
TEMPERATURE, TOP_P, MAX_TOKENS = 0.1, 0.9, 1500


def compare_prompt(caption_1: str, caption_2: str, reference: str) -> str:
    """CapArena's user text after the image (the with-reference variant)."""
    return (
        f"Caption 1:\n{caption_1}\nCaption 2:\n{caption_2}\nCaption Reference:\n{reference}\n"
        "Determine which is better and answer with the given format. Only mark a tie if it is truly difficult "
        "to decide which caption is better based on their quality, informativeness, and precision."
    )


def parse_verdict(response: str) -> str | None:
    """'1', '2' or 'tie'; None when the reply lacks CapArena's `Reason:` / `Judgment:` lines or
    the judgment is not one of its accepted strings (then the battle is malformed).

    >>> parse_verdict("Reason: more precise.\\nJudgment: Caption 2 is better."), parse_verdict("Judgment: Tie")
    ('2', None)
    >>> parse_verdict("Reason: close.\\nJudgment: Tie"), parse_verdict("Reason: x\\nJudgment: <Caption 1 is better>")
    ('tie', None)
    """
    reason = re.search(r"Reason:\s*(.+?)\s*Judgment:", response, re.DOTALL)
    judgment = re.search(r"Judgment:\s*(.+)", response)
    if not reason or not judgment:
        return None
    return VERDICTS.get(judgment.group(1).strip())


class JudgeFailed(Exception):
    """The judge gave no reply (server error, timeout after the retries): the battle is failed, not malformed."""


def _mime(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"GIF8"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/jpeg"


@dataclass
class HTTPJudge:
    """An OpenAI-compatible `/chat/completions` endpoint (OpenAI, vLLM `serve`, SGLang, ...).

    Timeouts, refused connections, HTTP 429 and 5xx are retried `retries` times, waiting
    `backoff`, 2x`backoff`, 4x`backoff`... seconds; other HTTP errors (a bad key, a wrong model
    name) are not, since asking again cannot help. The key comes from `$OPENAI_API_KEY` when set.
    """

    url: str
    model: str
    timeout: float = 120.0
    retries: int = 4
    backoff: float = 2.0
    max_tokens: int = MAX_TOKENS

    @property
    def identity(self) -> str:
        return f"{self.url.rstrip('/')} {self.model}"

    @property
    def label(self) -> str:
        return f"{self.model} at {self.url.rstrip('/')}"

    def messages(self, image: bytes, caption_1: str, caption_2: str, reference: str) -> list[dict]:
        picture = f"data:{_mime(image)};base64,{base64.b64encode(image).decode()}"
        return [
            {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
            {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": picture, "detail": "high"}},
                {"type": "text", "text": compare_prompt(caption_1, caption_2, reference)},
            ]},
        ]  # fmt: skip

    def __call__(self, image: bytes, caption_1: str, caption_2: str, reference: str) -> tuple[str, int]:
        """The judge's text and the attempts it took; JudgeFailed with the last reason otherwise."""
        body = json.dumps({
            "model": self.model, "messages": self.messages(image, caption_1, caption_2, reference),
            "max_tokens": self.max_tokens, "temperature": TEMPERATURE, "top_p": TOP_P,
        }).encode()  # fmt: skip
        headers = {"Content-Type": "application/json"}
        if os.environ.get("OPENAI_API_KEY"):
            headers["Authorization"] = f"Bearer {os.environ['OPENAI_API_KEY']}"
        endpoint = self.url.rstrip("/") + "/chat/completions"
        reason = ""
        for attempt in range(1, self.retries + 2):
            if attempt > 1:
                time.sleep(self.backoff * 2 ** (attempt - 2))
            try:
                request = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    payload = response.read()
            except urllib.error.HTTPError as error:
                detail = error.read()[:200].decode("utf-8", "replace").strip()
                reason = f"HTTP {error.code} from {endpoint}: {detail}"
                if error.code == 429 or error.code >= 500:
                    continue
                raise JudgeFailed(reason) from None
            except (TimeoutError, socket.timeout) as error:
                reason = f"no reply from {endpoint} within {self.timeout:g} s ({error or 'timed out'})"
                continue
            except (urllib.error.URLError, http.client.HTTPException, OSError) as error:  # refused, reset, cut short
                why = getattr(error, "reason", error)
                reason = f"{endpoint}: {'timed out' if isinstance(why, (TimeoutError, socket.timeout)) else why}"
                continue
            try:
                return json.loads(payload)["choices"][0]["message"]["content"] or "", attempt
            except (ValueError, KeyError, IndexError, TypeError):
                raise JudgeFailed(f"{endpoint} replied without choices[0].message.content: {payload[:200]!r}") from None
        raise JudgeFailed(f"{reason} (after {self.retries + 1} attempts)")


class LocalJudge:
    """A local model folder, run with transformers (the HF eval backend's loading), greedy."""

    def __init__(self, folder: str, max_tokens: int = MAX_TOKENS):
        from ssl4rl.eval.backends import HFBackend
        from ssl4rl.eval.runner import model_fingerprint

        self.folder = folder
        self.backend = HFBackend(folder, max_new_tokens=max_tokens)
        if self.backend.text_only:
            from ssl4rl.errors import UserError

            raise UserError(f"{folder}: a text-only model cannot judge captions (it does not see the image)")
        self.identity = f"local:{model_fingerprint(folder)[:16]}"  # its weights, not its path
        self.label = f"{folder} (local, transformers)"

    def __call__(self, image: bytes, caption_1: str, caption_2: str, reference: str) -> tuple[str, int]:
        try:
            return self._generate(image, caption_1, caption_2, reference), 1
        except Exception as error:  # out of memory, an image the processor refuses: this battle fails, not the run
            raise JudgeFailed(f"local judge {self.folder}: {type(error).__name__}: {error}") from None

    def _generate(self, image: bytes, caption_1: str, caption_2: str, reference: str) -> str:
        from ssl4rl.images import load

        backend = self.backend
        messages = [
            {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": compare_prompt(caption_1, caption_2, reference)}]},
        ]
        text = backend.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = backend.processor(text=[text], images=[load(image)], return_tensors="pt").to(backend.model.device)
        with backend.torch.inference_mode():
            out = backend.model.generate(**inputs, max_new_tokens=backend.max_new_tokens, do_sample=False, suppress_tokens=backend.suppress or None)
        return backend.processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)[0]


def make_judge(judge: str, judge_model: str | None = None, **http_options):
    """`judge`: an http(s) URL (with `judge_model`, the server's model name) or a local model folder."""
    from ssl4rl.errors import UserError

    if judge.startswith(("http://", "https://")):
        if not judge_model:
            raise UserError(f"--judge {judge}: an OpenAI-compatible server needs --judge-model NAME (the model it serves)")
        return HTTPJudge(judge, judge_model, **http_options)
    if judge_model:
        raise UserError("--judge-model is for a judge server (--judge http://HOST:PORT/v1); a local --judge folder is its own model")
    if not Path(judge).expanduser().is_dir():
        raise UserError(f"--judge {judge}: neither an http(s):// server URL nor a local model folder")
    return LocalJudge(judge, max_tokens=http_options.get("max_tokens", MAX_TOKENS))


def battle_fingerprint(judge_identity: str, image: bytes, caption_1: str, caption_2: str, reference: str) -> str:
    """What a saved verdict answered: a rerun reuses it only for the same judge, image and texts."""
    digest = hashlib.sha256(judge_identity.encode() + b"\0" + hashlib.sha256(image).digest())
    for text in (caption_1, caption_2, reference):
        digest.update(b"\0" + text.encode())
    return digest.hexdigest()[:32]
