"""How much does a model's answer position see of the pictures? A linear probe.

    python bench/vision_probe.py MODEL BUILD [--rows 480]

For train rows of a build, the hidden state of every layer at the position where the answer
is written (after `<think> </think> <answer>`); prints, per layer, the spread across puzzles
(std of each coordinate, averaged: only the pictures vary between rotation prompts, so this is
the picture's share), the mean norm, and a linear probe's held-out accuracy at predicting the
ground truth (trained on 3/4 of the rows). A probe far above chance with a tiny spread is a
signal GRPO can only read slowly: Adam moves weights by about the learning rate, so the
logits move by about lr x spread x width per step.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from ssl4rl.chat import load_split

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("build")
    parser.add_argument("--rows", type=int, default=480)
    args = parser.parse_args()
    processor = AutoProcessor.from_pretrained(args.model, padding_side="left")
    model = AutoModelForImageTextToText.from_pretrained(args.model).eval()
    data = load_split(args.build, "train")
    states, labels = [], []
    with torch.no_grad():
        for start in range(0, min(args.rows, len(data)), 32):
            rows = [data[i] for i in range(start, min(start + 32, args.rows, len(data)))]
            texts = [processor.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False) + "<think> </think> <answer>" for r in rows]
            batch = processor(text=texts, images=[r["images"] for r in rows], return_tensors="pt", padding=True)
            hidden = model(**batch, output_hidden_states=True).hidden_states
            states.append(torch.stack([h[:, -1] for h in hidden], 1))
            labels += [r["reward_model"]["ground_truth"] for r in rows]
    states = torch.cat(states)
    classes = sorted(set(labels))
    y = torch.tensor([classes.index(label) for label in labels])
    train = torch.arange(len(y)) < len(y) * 3 // 4
    torch.manual_seed(0)
    print(f"{len(y)} rows, {len(classes)} answers, chance {max((y == c).float().mean().item() for c in range(len(classes))):.2f} (most frequent)")
    for layer in range(states.shape[1]):
        x = states[:, layer]
        z = (x - x[train].mean(0)) / (x[train].std(0) + 1e-6)
        weights = torch.zeros(z.shape[1], len(classes), requires_grad=True)
        bias = torch.zeros(len(classes), requires_grad=True)
        optimizer = torch.optim.Adam([weights, bias], lr=0.05)
        for _ in range(300):
            loss = torch.nn.functional.cross_entropy(z[train] @ weights + bias, y[train]) + 1e-3 * (weights**2).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        accuracy = ((z[~train] @ weights + bias).argmax(1) == y[~train]).float().mean().item()
        print(f"layer {layer}: spread {x.std(0).mean().item():.4f}  norm {x.norm(dim=1).mean().item():.2f}  probe {accuracy:.2f}")


if __name__ == "__main__":
    main()
