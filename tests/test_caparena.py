"""CapArena-Auto captioning: scores against battles computed by hand, the HTTP judge against a
loopback server that replays scripted verdicts (it serves no model), retries and failures,
malformed verdicts, missing data, resuming after Ctrl-C, the local judge (the tiny model), and
the report beside multiple-choice results."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import textured_image
from ssl4rl.cli import main
from ssl4rl.eval.caparena import BASELINES, outcome
from ssl4rl.eval.captioning import BATTLES, CAPTIONS, run_caparena
from ssl4rl.eval.judge import SYSTEM_PROMPT, HTTPJudge, parse_verdict

GPT, COG, CPM = BASELINES
# Image i: its baseline and how the replay judge treats it. "model"/"baseline": that caption wins
# in either order; "first": Caption 1 always wins (pure position bias); "tie"; "garbage": a reply
# without CapArena's format.
SCRIPT = [(GPT, "model"), (GPT, "first"), (COG, "baseline"), (COG, "tie"), (CPM, "garbage"), (CPM, "model")]


def write_release(root: Path, script=SCRIPT) -> Path:
    """A CapArena-format release: caparena_auto_600.json and all_images/test_0000i.jpg."""
    (root / "all_images").mkdir(parents=True)
    release = {}
    for i, (baseline, _) in enumerate(script):
        name = f"test_{i:05d}.jpg"
        textured_image(i, 64 + 8 * i, 48).save(root / "all_images" / name, "JPEG")
        release[name] = {"image_id": i, "ref_model": baseline,
                         "captions": {"human": f"human reference {i}", baseline: f"baseline caption {i} of {baseline}"}}  # fmt: skip
    (root / "caparena_auto_600.json").write_text(json.dumps(release))
    return root


class WidthCaptioner:
    """A captioning backend whose caption names the image's width (so each image has its own)."""

    def __init__(self, stop_after=None):
        self.calls, self.captioned, self.stop_after = 0, [], stop_after

    def generate(self, prompts, images):
        self.calls += 1
        if self.stop_after is not None and self.calls > self.stop_after:
            raise KeyboardInterrupt
        assert all(p == "<image>Describe this image in detail." and len(imgs) == 1 for p, imgs in zip(prompts, images))
        self.captioned += [imgs[0].width for imgs in images]
        return [f"model caption {(imgs[0].width - 64) // 8} with some words" for imgs in images]


def scripted_reply(caption_1: str, caption_2: str, script=SCRIPT) -> str:
    """The replay judge's answer, from the two captions it was shown (the baseline's names its image)."""
    model_first = not caption_1.startswith("baseline caption")
    index = int(re.match(r"baseline caption (\d+)", caption_2 if model_first else caption_1).group(1))
    rule = script[index][1]
    if rule == "garbage":
        return "Caption 1, I suppose."
    winner = {"model": "1" if model_first else "2", "baseline": "2" if model_first else "1", "first": "1"}.get(rule)
    return f"Reason: scripted.\nJudgment: {'Tie' if rule == 'tie' else f'Caption {winner} is better.'}"


class ScriptedJudge:
    """A judge in-process: counts calls, can stop the run (Ctrl-C) after some."""

    identity = "scripted"

    def __init__(self, stop_after=None):
        self.calls, self.stop_after = 0, stop_after

    def __call__(self, image, caption_1, caption_2, reference):
        self.calls += 1
        if self.stop_after is not None and self.calls > self.stop_after:
            raise KeyboardInterrupt
        return scripted_reply(caption_1, caption_2), 1


# Battles by hand (both orders, so 4 per baseline): GPT: img0 win+win, img1 win (model first) +
# loss -> 3-1 -> 100*2/4 = 50; Cog: img2 loss+loss, img3 tie+tie -> -50; CPM: img4 two malformed,
# img5 win+win -> 100*2/4 = 50. Overall (50 - 50 + 50) / 3 = 16.67.
HAND = {GPT: (50.0, 3, 1, 0, 0), COG: (-50.0, 0, 2, 2, 0), CPM: (50.0, 2, 0, 0, 2)}


def test_scores_equal_battles_computed_by_hand(tmp_path):
    summary = run_caparena(str(write_release(tmp_path / "data")), None, WidthCaptioner(), ScriptedJudge(), str(tmp_path / "out"))
    for baseline, (score, win, loss, tie, malformed) in HAND.items():
        row = summary["per_baseline"][baseline]
        assert (row["score"], row["win"], row["loss"], row["tie"], row["malformed"], row["battles"]) == (score, win, loss, tie, malformed, 4)
    assert summary["score"] == 16.67 and summary["battles"] == 12 and summary["malformed"] == 2
    assert summary["per_baseline"][GPT]["by_order"] == {"model_first": 100.0, "model_second": 0.0}  # img1's position bias shows
    assert summary["words"] == 6.0 and summary["per_baseline"][GPT]["baseline_words"] == 5.0  # CapArena's split(' ') count
    battles = [json.loads(line) for line in (tmp_path / "out" / BATTLES).read_text().splitlines()]
    garbage = [b for b in battles if b["image"] == "test_00004.jpg"]
    assert [b["outcome"] for b in garbage] == ["malformed", "malformed"] and garbage[0]["reply"] == "Caption 1, I suppose."
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| overall (mean of baselines) | 12 | 16.67 |" in report and "**2 of 12 battles have no verdict** (malformed 2" in report


def test_one_order_is_drawn_per_image_and_scored_like_caparena(tmp_path):
    summary = run_caparena(str(write_release(tmp_path / "data")), None, WidthCaptioner(), ScriptedJudge(), str(tmp_path / "out"), orders="one")
    battles = [json.loads(line) for line in (tmp_path / "out" / BATTLES).read_text().splitlines()]
    assert len(battles) == 6 and len({b["image"] for b in battles}) == 6
    for baseline, row in summary["per_baseline"].items():  # CapArena: (wins - losses) / 2 over its 200 images = 100 (W - L) / n
        assert row["score"] == round(100 * (row["win"] - row["loss"]) / row["battles"], 2) and row["battles"] == 2
    img1 = next(b for b in battles if b["image"] == "test_00001.jpg")
    assert img1["outcome"] == ("win" if img1["order"] == "model_first" else "loss")


@pytest.mark.parametrize(
    "reply, verdict",
    [
        ("Reason: finer detail.\nJudgment: Caption 1 is better.", "1"),
        ("Reason: x\nJudgment: Caption 2 is better", "2"),
        ("Reason: both fine\nJudgment: Tie.", "tie"),
        ("Judgment: Caption 1 is better.", None),  # no Reason line: CapArena asks again, we record it
        ("Reason: x\nJudgment: <Caption 1 is better>", None),  # the template's brackets copied
        ("Reason: x\nJudgment: **Caption 2 is better**", None),
        ("Reason: x\nJudgment: caption 1 is better.", None),
        ("Caption 1 is better.", None),
        ("", None),
    ],
)
def test_only_caparenas_verdict_strings_count(reply, verdict):
    assert parse_verdict(reply) == verdict


def test_outcome_follows_the_order():
    assert [outcome(v, "model_first") for v in ("1", "2", "tie", None)] == ["win", "loss", "tie", "malformed"]
    assert [outcome(v, "model_second") for v in ("1", "2", "tie", None)] == ["loss", "win", "tie", "malformed"]


class Replay(BaseHTTPRequestHandler):
    """A chat-completions endpoint that replays SCRIPT's verdicts; `behaviour` (set per test) can
    make it slow, fail with a status some number of times, or check the request."""

    behaviour: dict = {}
    requests: list = []
    script: list = SCRIPT

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Replay.requests.append({"body": body, "auth": self.headers.get("Authorization"), "path": self.path})
        text = body["messages"][1]["content"][1]["text"]
        caption_1, caption_2 = re.search(r"Caption 1:\n(.*)\nCaption 2:\n(.*)\nCaption Reference:", text).groups()
        index = int(re.search(r"baseline caption (\d+)", caption_1 + caption_2).group(1))
        rule = self.behaviour.get(index)
        if rule == "slow":
            time.sleep(0.6)
        elif isinstance(rule, list) and rule:
            status = rule.pop(0)
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b'{"error": "scripted"}')
            return
        reply = json.dumps({"choices": [{"message": {"role": "assistant", "content": scripted_reply(caption_1, caption_2, Replay.script)}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


@pytest.fixture
def replay_server():
    Replay.behaviour, Replay.requests, Replay.script = {}, [], SCRIPT
    server = ThreadingHTTPServer(("127.0.0.1", 0), Replay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_http_judge_sends_caparenas_prompt_and_scores_like_the_in_process_judge(tmp_path, replay_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    data = write_release(tmp_path / "data")
    judge = HTTPJudge(replay_server, "replay-judge", timeout=5, retries=0)
    summary = run_caparena(str(data), None, WidthCaptioner(), judge, str(tmp_path / "out"))
    local = run_caparena(str(data), None, WidthCaptioner(), ScriptedJudge(), str(tmp_path / "same"))
    assert {k: v["score"] for k, v in summary["per_baseline"].items()} == {k: v["score"] for k, v in local["per_baseline"].items()}
    first = Replay.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer sk-test" and first["body"]["model"] == "replay-judge"
    system, user = first["body"]["messages"]
    assert system["content"][0]["text"] == SYSTEM_PROMPT and user["content"][0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert "Caption Reference:\nhuman reference 0\n" in user["content"][1]["text"]
    assert (first["body"]["temperature"], first["body"]["top_p"], first["body"]["max_tokens"]) == (0.1, 0.9, 1500)
    assert len(Replay.requests) == 12


def test_a_timeout_is_retried_then_recorded_as_failed_with_its_reason(tmp_path, replay_server):
    Replay.behaviour = {0: "slow", 5: [503, 500]}  # image 0 never answers in time; image 5 fails twice, then answers
    judge = HTTPJudge(replay_server, "replay-judge", timeout=0.2, retries=2, backoff=0.01)
    summary = run_caparena(str(write_release(tmp_path / "data")), None, WidthCaptioner(), judge, str(tmp_path / "out"))
    battles = {b["key"]: b for b in map(json.loads, (tmp_path / "out" / BATTLES).read_text().splitlines())}
    slow = battles["test_00000.jpg#model_first"]
    assert slow["outcome"] == "failed" and "within 0.2 s" in slow["error"] and "after 3 attempts" in slow["error"]
    bodies = [r["body"]["messages"][1]["content"][1]["text"] for r in Replay.requests]
    assert sum("model caption 0 " in text for text in bodies) == 6  # 2 orders x 3 attempts
    assert battles["test_00005.jpg#model_first"]["outcome"] == "win" and battles["test_00005.jpg#model_first"]["attempts"] == 3
    assert summary["failed"] == 2 and summary["per_baseline"][GPT]["score"] == 0.0  # img1 win + loss; img0's failed pair counts as neither
    assert "failed 2" in (tmp_path / "out" / "report.md").read_text()
    # The server recovers: a rerun judges only the failed battles again.
    Replay.behaviour, Replay.requests = {}, []
    summary = run_caparena(str(tmp_path / "data"), None, WidthCaptioner(), judge, str(tmp_path / "out"))
    assert len(Replay.requests) == 2 and summary["failed"] == 0 and summary["per_baseline"][GPT]["score"] == 50.0


def test_a_client_error_is_not_retried_and_a_dead_judge_stops_the_run(tmp_path, replay_server, capsys):
    Replay.behaviour = {i: [401] * 9 for i in range(6)}
    data = write_release(tmp_path / "data")
    judge = HTTPJudge(replay_server, "replay-judge", timeout=5, retries=3, backoff=0.01)
    with pytest.raises(Exception, match="failed 5 battles in a row, last: HTTP 401"):
        run_caparena(str(data), None, WidthCaptioner(), judge, str(tmp_path / "out"))
    assert len(Replay.requests) == 5  # one attempt each: asking again cannot fix a 401
    battles = [json.loads(line) for line in (tmp_path / "out" / BATTLES).read_text().splitlines()]
    assert [b["outcome"] for b in battles] == ["failed"] * 5


def test_missing_image_and_missing_baseline_caption_are_counted_not_judged(tmp_path):
    data = write_release(tmp_path / "data")
    (data / "all_images" / "test_00000.jpg").unlink()
    release = json.loads((data / "caparena_auto_600.json").read_text())
    del release["test_00002.jpg"]["captions"][COG]
    (data / "caparena_auto_600.json").write_text(json.dumps(release))
    judge, captioner = ScriptedJudge(), WidthCaptioner()
    summary = run_caparena(str(data), None, captioner, judge, str(tmp_path / "out"))
    assert sorted(captioner.captioned) == [72, 80, 88, 96, 104]  # image 0 is never captioned
    assert judge.calls == 8 and summary["missing"] == 4 and summary["caption_errors"] == 1
    battles = {b["key"]: b for b in map(json.loads, (tmp_path / "out" / BATTLES).read_text().splitlines())}
    assert "image missing" in battles["test_00000.jpg#model_first"]["error"]
    assert battles["test_00002.jpg#model_second"]["error"] == f"no {COG} caption for test_00002.jpg in the release"
    assert summary["per_baseline"][GPT]["score"] == 0.0  # img1 win + loss; img0's two battles count as neither
    assert summary["per_baseline"][COG]["score"] == 0.0 and summary["per_baseline"][COG]["tie"] == 2
    assert "missing 4" in (tmp_path / "out" / "report.md").read_text()


def test_ctrl_c_then_rerun_continues_without_redoing_captions_or_battles(tmp_path):
    data = str(write_release(tmp_path / "data"))
    whole = run_caparena(data, None, WidthCaptioner(), ScriptedJudge(), str(tmp_path / "whole"))
    out = str(tmp_path / "out")
    with pytest.raises(KeyboardInterrupt):  # stopped while captioning: the first batch of 4 is kept
        run_caparena(data, None, WidthCaptioner(stop_after=1), ScriptedJudge(), out, batch_size=4)
    assert len((Path(out) / CAPTIONS).read_text().splitlines()) == 4
    captioner = WidthCaptioner()
    with pytest.raises(KeyboardInterrupt):  # stopped while judging, after 5 battles
        run_caparena(data, None, captioner, ScriptedJudge(stop_after=5), out, batch_size=4)
    assert captioner.captioned == [96, 104]
    with open(Path(out) / BATTLES, "a") as sink:  # a line torn by the interruption
        sink.write('{"key": "test_00003.jpg#model_first", "outc')
    captioner, judge = WidthCaptioner(), ScriptedJudge()
    summary = run_caparena(data, None, captioner, judge, out)
    assert captioner.calls == 0 and judge.calls == 12 - 5
    assert {k: summary[k] for k in ("score", "per_baseline", "battles", "words")} == {k: whole[k] for k in ("score", "per_baseline", "battles", "words")}
    assert all(json.loads(line) for line in (Path(out) / BATTLES).read_text().splitlines())


def test_another_judge_reuses_the_captions_and_judges_again(tmp_path):
    data, out = str(write_release(tmp_path / "data")), str(tmp_path / "out")
    run_caparena(data, None, WidthCaptioner(), ScriptedJudge(), out)
    other = ScriptedJudge()
    other.identity = "another"
    captioner = WidthCaptioner()
    run_caparena(data, None, captioner, other, out)
    assert captioner.calls == 0 and other.calls == 12


def test_bad_release_is_one_line_and_exit_2(tmp_path, capsys):
    data = write_release(tmp_path / "data")
    server = ["--judge", "http://127.0.0.1:9/v1", "--judge-model", "m"]
    cases = [
        (["--data", str(tmp_path / "nowhere"), *server], "no caparena_auto_600.json"),
        (["--data", str(data), "--images", str(tmp_path / "noimages"), *server], "no such image folder"),
        (["--data", str(data), "--judge", "ftp://x"], "neither an http(s):// server URL nor a local model folder"),
        (["--data", str(data), "--judge", "http://127.0.0.1:9/v1"], "needs --judge-model"),
        (["--data", str(data)], "needs --data (caparena_auto_600.json or its folder) and --judge"),
    ]
    for extra, message in cases:
        code = main(["eval", "--bench", "caparena", "--model", str(tmp_path), "--out", str(tmp_path / "o"), *extra])
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1, (extra, err)
    for content, message in [('{"test_00000.jpg": {"captions": "oops"}}', "entry 'test_00000.jpg' lacks a 'captions' object"), ("[1, 2", "not JSON")]:
        (data / "caparena_auto_600.json").write_text(content)
        code = main(["eval", "--bench", "caparena", "--model", str(tmp_path), "--out", str(tmp_path / "o"), "--data", str(data), *server])
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()  # nothing written before the inputs are checked


def test_cli_with_the_tiny_model_captioning_judged_by_the_replay_server_and_by_itself(tmp_path, replay_server, capsys):
    """End to end: the tiny model captions; the loopback replay server judges; then the tiny model
    judges as a local HF judge (its replies are not CapArena's format: each is recorded malformed)."""
    from ssl4rl.tiny_vlm import make_tiny_qwen2_5_vl

    model = make_tiny_qwen2_5_vl(tmp_path / "tiny")
    Replay.script = [(baseline, "model") for baseline, _ in SCRIPT[:3]]
    data = write_release(tmp_path / "data", Replay.script)
    common = ["eval", "--bench", "caparena", "--model", str(model), "--data", str(data), "--max-new-tokens", "6", "--backend", "hf"]
    assert main([*common, "--judge", replay_server, "--judge-model", "replay", "--out", str(tmp_path / "served"), "--judge-orders", "one"]) == 0
    served = json.loads((tmp_path / "served" / "summary.json").read_text())
    assert served["benchmark"] == "caparena" and served["battles"] == 3 and served["captions"] == 3
    assert served["score"] == 100.0 and len(Replay.requests) == 3  # the script lets the model win every battle
    assert main([*common, "--judge", str(model), "--judge-max-tokens", "8", "--out", str(tmp_path / "local"), "--limit", "1"]) == 0
    local = json.loads((tmp_path / "local" / "summary.json").read_text())
    battles = [json.loads(line) for line in (tmp_path / "local" / BATTLES).read_text().splitlines()]
    assert len(battles) == 2 and all(isinstance(b["reply"], str) and b["outcome"] == outcome(parse_verdict(b["reply"]), b["order"]) for b in battles)
    assert local["battles"] == 2 and local["win"] + local["loss"] + local["tie"] + local["malformed"] == 2 and local["failed"] == 0
    assert "CapArena score" in capsys.readouterr().out


class FirstAlwaysJudge(ScriptedJudge):
    """Caption 1 always wins: a judge with nothing but position bias."""

    identity = "first-always"

    def __call__(self, image, caption_1, caption_2, reference):
        return "Reason: it came first.\nJudgment: Caption 1 is better.", 1


def test_report_shows_captioning_beside_multiple_choice(tmp_path, capsys):
    from ssl4rl.eval.runner import benchmark_items, run
    from test_eval import ScriptedBackend, write_mmbench_tsv

    tsv = write_mmbench_tsv(tmp_path / "bench.tsv")
    run(benchmark_items(str(tsv), None, None), ScriptedBackend(lambda p: "<answer>A</answer>"), str(tmp_path / "mcq-base"), label="base")
    run(benchmark_items(str(tsv), None, None), ScriptedBackend(lambda p: "<answer>B</answer>"), str(tmp_path / "mcq-trained"), label="trained")
    data = str(write_release(tmp_path / "data"))
    run_caparena(data, None, WidthCaptioner(), ScriptedJudge(), str(tmp_path / "cap-base"), label="base")
    run_caparena(data, None, WidthCaptioner(), FirstAlwaysJudge(), str(tmp_path / "cap-trained"), label="trained")
    capsys.readouterr()
    folders = [str(tmp_path / name) for name in ("mcq-base", "mcq-trained", "cap-base", "cap-trained")]
    assert main(["report", *folders, "--out", str(tmp_path / "cmp.png")]) == 0
    out = capsys.readouterr().out
    assert "| category | base | trained |" in out and "| captioning (CapArena-Auto) | base | trained |" in out
    assert "| score (mean of baselines) | 16.67 (n=12) | 0.00 (n=12) |" in out  # position bias alone cancels over both orders
    assert f"| vs {GPT} | 50.00 (n=4) | 0.00 (n=4) |" in out and "| caption words (mean) | 6.0 | 6.0 |" in out
    assert "| battles without verdict | 2 | 0 |" in out
    assert (tmp_path / "cmp.png").stat().st_size > 0 and (tmp_path / "cmp-captioning.png").stat().st_size > 0
