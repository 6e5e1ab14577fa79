"""Teacher-forced log-likelihood of many short completions of one prompt: the literature's way to
rank every entity of a knowledge graph, where generating a list can only rank what it lists.

The prompt is run once and its key/value cache reused for every batch of completions, so a
candidate costs its own few tokens, not the prompt's hundreds. A completion is the assistant turn
as the chat template writes it (the name, then the end of the turn), so a name that is a prefix
of another does not win by stopping early.
"""

from __future__ import annotations

import copy

MARK = "\x00"  # a placeholder assistant turn, to read what the chat template puts around it


def completion_texts(tokenizer, prompt_text: str, completions: list[str]) -> list[str]:
    """Each completion as the chat template continues `prompt_text` (with its generation prompt)
    into a finished assistant turn; a template it cannot be read from: the name and the EOS token."""
    user = [{"role": "user", "content": "x"}]
    opened = tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template([*user, {"role": "assistant", "content": MARK}], tokenize=False)
    if full.startswith(opened) and MARK in full[len(opened) :]:
        before, after = full[len(opened) :].split(MARK, 1)
        return [before + c + after for c in completions]
    return [c + (tokenizer.eos_token or "") for c in completions]


def score_completions(model, tokenizer, prompt_text: str, completions: list[str], batch_size: int = 64) -> list[float]:
    """log p(completion | prompt) summed over the completion's tokens, for each completion;
    `prompt_text` is already in the chat template (with its generation prompt)."""
    import torch

    device = model.device
    prompt = tokenizer(prompt_text, add_special_tokens=False, return_tensors="pt")["input_ids"].to(device)
    ids = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in completion_texts(tokenizer, prompt_text, completions)]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    scores: list[float] = []
    with torch.inference_mode():
        out = model(input_ids=prompt, use_cache=True)
        first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)  # the first completion token's distribution
        cache, length = out.past_key_values, prompt.shape[1]
        for start in range(0, len(ids), batch_size):
            batch = ids[start : start + batch_size]
            longest = max(len(i) for i in batch)
            tokens = torch.tensor([i + [pad] * (longest - len(i)) for i in batch], device=device)
            valid = torch.tensor([[1] * len(i) + [0] * (longest - len(i)) for i in batch], device=device)
            shared = copy.deepcopy(cache)
            shared.batch_repeat_interleave(len(batch))
            mask = torch.cat([torch.ones(len(batch), length, dtype=valid.dtype, device=device), valid], dim=1)
            positions = torch.arange(length, length + longest, device=device).expand(len(batch), longest)
            logits = model(input_ids=tokens, attention_mask=mask, position_ids=positions, past_key_values=shared, use_cache=True).logits
            logp = torch.log_softmax(logits.float(), dim=-1)
            per_token = torch.cat([first[tokens[:, :1]], logp[:, :-1].gather(2, tokens[:, 1:, None]).squeeze(2)], dim=1)
            scores.extend((per_token * valid).sum(dim=1).tolist())
    return scores
