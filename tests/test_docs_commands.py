"""Every command the README and docs/ show, taken from the files themselves: a renamed or removed
flag in the CLI, or a typo in a page, fails here.

What is a command:
- each line of a ```bash block and of an indented code block (```text blocks are not commands);
  shell syntax (`&&`, loops, quoting, comments) is expanded by bash itself, with every command
  recorded instead of run (`record_commands`);
- inline code that starts with `ssl4rl `, `python bench/`, `python scripts/` or `python -m`/`-c`;
- a synopsis (`[--flag VALUE]`, `a|b` choices): each flag must exist on that command's parser and
  each listed choice must be one of its choices; the part outside the brackets must parse.

Every `ssl4rl` command goes through the real parser (`ssl4rl.cli.parse_args`), a bench or script
command through that script's own parser (its `main()` is stopped right after `parse_args`). The
cheap ones in code blocks are run, in a temporary folder per page, in the page's order with its
builds first: builds from bundled data (on `RUN_LIMIT` rows, one worker), `show`, `audit`, `check`,
`sources`, `train --dry-run`, and `tiny-model` (without its minutes-long warm-start). The rest
are parsed only, for the reasons in `PARSE_ONLY`.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import importlib.util
import io
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ssl4rl.cli import build_parser, main, parse_args

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")), "bench/README.md", "datasets/README.md"]

# Other tools a page may show: never run, skipped by name.
OTHER_TOOLS = {"pip", "ray", "git", "aws", "vllm", "tensorboard"}
# python -m MODULE that is not ours.
OTHER_MODULES = {"pytest": "the test suite itself (CI runs it: .ci/run)"}
# Why a command is parsed but not run. Keys are the command (or a kind of command).
PARSE_ONLY = {
    "train": "trains: a minute and more on the CPU (tests/test_train.py, test_verl_trainer.py run it), hours on GPUs",
    "demo": "trains for about a minute (.ci/run runs it)",
    "merge": "needs a training run's checkpoint",
    "eval": "needs a trained model and generates answers (tests/test_eval*.py run it on the tiny model)",
    "report": "needs eval folders",
    "build-remote": "a downloaded, placeholder or object-store source, or --engine ray: downloads, network, a cluster",
    "needs-input": "its build or model comes from a command that is only parsed (or is a placeholder)",
    "script": "a repository script that launches training or downloads",
    "inline": "inline code in a sentence: parsed, not run",
    "bench": "a benchmark script: minutes of timing or training (bench/README.md says what each measures)",
}
# Flags a page names in prose that are not ours: why.
OTHER_FLAGS = {"--api-key": "vLLM serve's (docs/captioning.md)", "--gpu": "the example of a prefix the CLI refuses"}
# Sources a build can read with no download.
BUNDLED = {"samples", "shapes", "karate", "florentine", "lesmis", "synthetic", "synthetic-kg"}
RUN_LIMIT = 24  # rows per build the test runs: tiny inputs
SHAPES = "shapes:32"  # `--source shapes` (1000 pictures) runs on 32
# Placeholders a runnable command may name, and what the test puts there.
PARSE_PLACEHOLDERS = {"TASK": "rotation"}
# Commands that exit non-zero on purpose, as their page says: (page, a substring) -> status.
EXPECTED_STATUS = {("docs/graphs.md", "data.max_prompt_length=1024"): 2}

SYNOPSIS = re.compile(r"\[--?\w|\[[a-z_]+\.[\w.]+=|\[task options\]|(?<![\w/.])[a-z0-9][\w.-]*\|[\w.-]+|<\w[\w-]*>")
FLAG = re.compile(r"(?<![\w-])--[a-z0-9][a-z0-9-]*")
CHOICES = re.compile(r"(--[a-z0-9][a-z0-9-]*)[ =]([\w.-]+(?:\|[\w.-]+)+)")


@dataclass
class Command:
    page: str
    line: int
    text: str  # as the page shows it
    inline: bool = False
    argv: list[str] = field(default_factory=list)

    def where(self) -> str:
        return f"{self.page}:{self.line}: {self.text}"


# ---------------------------------------------------------------- reading the pages


def code_blocks(text: str):
    """(first line number, language, lines) of each fenced and indented code block, and the
    prose lines (number, text) outside them."""
    lines = text.split("\n")
    blocks, prose, i = [], [], 0
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"^\s*```(\w*)\s*$", line)
        if fence:
            j = i + 1
            while j < len(lines) and not re.match(r"^\s*```\s*$", lines[j]):
                j += 1
            blocks.append((i + 2, fence.group(1) or "text", lines[i + 1 : j]))
            i = j + 1
            continue
        previous_blank = i == 0 or not lines[i - 1].strip()
        if line.startswith("    ") and line.strip() and previous_blank and not line.lstrip().startswith(("- ", "* ", "|")):
            j = i
            while j < len(lines) and (lines[j].startswith("    ") or not lines[j].strip()):
                j += 1
            while not lines[j - 1].strip():
                j -= 1
            body = lines[i:j]
            indent = min(len(b) - len(b.lstrip()) for b in body if b.strip())
            blocks.append((i + 1, "indented", [b[indent:] for b in body]))
            i = j
            continue
        prose.append((i + 1, line))
        i += 1
    return blocks, prose


def logical_lines(first: int, lines: list[str]):
    """(line number, text) with backslash continuations joined, and synopsis lines that go on
    with `[` joined to the line before."""
    out: list[list] = []
    joining = False
    for n, line in enumerate(lines, first):
        stripped = line.strip()
        if joining or (stripped.startswith("[") and out and not stripped.startswith("[ ")):
            out[-1][1] += " " + stripped.rstrip("\\").strip()
        else:
            out.append([n, stripped.rstrip("\\").strip()])
        joining = stripped.endswith("\\")
    return [(n, t) for n, t in out if t]


def inline_spans(prose):
    """(line number, code) of inline code in the prose, spans broken over lines joined."""
    spans, paragraph = [], []
    for n, line in [*prose, (None, "")]:
        if line.strip() and n is not None:
            paragraph.append((n, line))
            continue
        text = " ".join(t.strip() for _, t in paragraph)
        starts = []  # line number of each character offset
        for m, t in paragraph:
            starts += [m] * (len(t.strip()) + 1)
        for match in re.finditer(r"(?<!`)`([^`]+)`(?!`)", text):
            spans.append((starts[match.start()], " ".join(match.group(1).split())))
        paragraph = []
    return spans


def strip_quotes(text: str) -> str:
    return re.sub(r"'[^']*'|\"[^\"]*\"", "''", text)


def is_synopsis(text: str) -> bool:
    return bool(SYNOPSIS.search(strip_quotes(text)))


def without_brackets(text: str) -> str:
    depth, out = 0, []
    for char in text:
        depth += char == "["
        if not depth:
            out.append(char)
        depth -= char == "]" and depth > 0
    return " ".join("".join(out).split())


HARNESS = r"""
__rec() { printf '%s\0' "$@" >> "$__OUT"; printf '\n\0' >> "$__OUT"; }
__trap() {
  local rest=$BASH_COMMAND
  while [[ $rest =~ ^[A-Za-z_][A-Za-z_0-9]*=(\"[^\"]*\"|\'[^\']*\'|[^ ]*)( +|$) ]]; do rest=${rest:${#BASH_REMATCH[0]}}; done
  case "${rest%% *}" in
    ''|\[|\[\[|test|true|false|:|for|while|until|if|case|select) return 0;;
  esac
  eval "__rec ${BASH_LINENO[0]} $BASH_COMMAND"
  return 1
}
shopt -s extdebug
trap __trap DEBUG
"""


def record_commands(script: str, tmp: Path) -> list[tuple[int, list[str]]]:
    """Each simple command bash would run, as (script line, argv), none of them run: a DEBUG trap
    records the expanded words and skips the command (assignments, tests and loops still run)."""
    header_lines = HARNESS.count("\n")
    (tmp / "script.sh").write_text(HARNESS + script + "\n")
    out = tmp / "commands.bin"
    out.write_bytes(b"")
    env = {"PATH": "/nonexistent", "HOME": str(tmp / "home"), "__OUT": str(out)}
    result = subprocess.run(["/bin/bash", str(tmp / "script.sh")], cwd=tmp, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and not result.stderr, f"bash could not read it: {result.stderr}\n{script}"
    commands = []
    for record in out.read_bytes().split(b"\n\0"):
        if record:
            words = [w.decode() for w in record.split(b"\0")[:-1]]
            commands.append((int(words[0]) - header_lines, words[1:]))
    return commands


def page_commands(page: str, tmp: Path) -> tuple[list[Command], list[Command]]:
    """(commands, synopses) of a page."""
    text = (ROOT / page).read_text()
    blocks, prose = code_blocks(text)
    commands, synopses = [], []
    for first, language, lines in blocks:
        if language not in ("bash", "sh", "shell", "indented"):
            continue
        keep = [""] * len(lines)
        shown = {}
        for n, line in logical_lines(first, lines):
            if is_synopsis(line):
                synopses.append(Command(page, n, line))
                continue
            keep[n - first] = lines[n - first]
            shown[n] = line
            for k in range(n - first + 1, len(lines)):  # its continuation lines
                if not lines[k - 1].rstrip().endswith("\\"):
                    break
                keep[k] = lines[k]
        for n, argv in record_commands("\n".join(keep), tmp):
            commands.append(Command(page, first + n - 1, shown.get(first + n - 1, " ".join(argv)), argv=argv))
    for n, code in inline_spans(prose):
        if not re.match(r"(/usr/bin/time )?(ssl4rl |python (bench/|scripts/|-m |-c ))", code):
            continue
        if is_synopsis(code):
            synopses.append(Command(page, n, code, inline=True))
            continue
        for _, argv in record_commands(code, tmp):
            commands.append(Command(page, n, code, inline=True, argv=argv))
    return commands, synopses


# ---------------------------------------------------------------- parsers


def subparsers(parser):
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)


@functools.cache
def cli_parser() -> argparse.ArgumentParser:
    return build_parser()


def command_parser(words: list[str]):
    """The parser of `ssl4rl WORDS...` (as far as the words name sub-commands) and the rest."""
    parser = cli_parser()
    while words:
        sub = subparsers(parser)
        if sub is None:
            break
        name = PARSE_PLACEHOLDERS.get(words[0], words[0])
        if name not in sub.choices:
            break
        parser, words = sub.choices[name], words[1:]
    return parser, words


def options_of(parser) -> dict[str, argparse.Action]:
    """The options of PARSER; for a command whose sub-command the text leaves open (`ssl4rl build
    ... --workers N`), those of any of its sub-commands too."""
    options = {s: a for a in parser._actions for s in a.option_strings}
    sub = subparsers(parser)
    for child in (sub.choices.values() if sub else []):
        options = {**options_of(child), **options}
    return options


class _Parsed(Exception):
    pass


_SCRIPTS: dict[str, object] = {}


def script_parse(script: str, argv: list[str]):
    """Run SCRIPT's main() with ARGV up to its parse_args (prefixes of options refused, as the
    CLI refuses them): (its parser, the namespace or None, the usage error or '')."""
    path = ROOT / script
    seen = {}
    original = argparse.ArgumentParser.parse_args

    def parse(self, args=None, namespace=None):
        seen["parser"] = self
        self.allow_abbrev = False
        seen["namespace"] = original(self, argv if args is None else args, namespace)
        raise _Parsed

    old_argv, sys.argv = sys.argv, [str(path), *argv]
    sys.path.insert(0, str(path.parent))  # the bench scripts import their neighbours
    err = io.StringIO()
    try:
        spec = importlib.util.spec_from_file_location(f"docs_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _SCRIPTS[script] = module
        argparse.ArgumentParser.parse_args = parse
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            module.main()
    except _Parsed:
        return seen["parser"], seen["namespace"], ""
    except SystemExit as exit_:
        return seen.get("parser"), None, "" if exit_.code == 0 else err.getvalue().strip() or f"exit {exit_.code}"
    finally:
        argparse.ArgumentParser.parse_args = original
        sys.argv = old_argv
        sys.path.remove(str(path.parent))
    raise AssertionError(f"{script}: main() returned without parsing its arguments")


def parse_ssl4rl(argv: list[str]) -> tuple[argparse.Namespace | None, str]:
    """(namespace or None, the error) of `ssl4rl ARGV` as the real CLI parses it."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            return parse_args(placeholders(argv), cli_parser()), ""
    except SystemExit as exit_:
        return (argparse.Namespace(command="--help/--version"), "") if exit_.code == 0 else (None, err.getvalue().strip())


def placeholders(argv: list[str]) -> list[str]:
    """ARGV with a placeholder where a sub-command goes (`build TASK`) made a real one."""
    return [PARSE_PLACEHOLDERS.get(a, a) if i < 2 else a for i, a in enumerate(argv)]


def parse_python_script(argv: list[str]) -> str:
    """The error of `python SCRIPT ARGS` under the script's own parser, or ''."""
    if not (ROOT / argv[0]).is_file():
        return f"{argv[0]}: no such script"
    _, namespace, error = script_parse(argv[0], argv[1:])
    if not error and argv[0] == "bench/learning.py" and namespace is not None:  # main() checks the names after parsing
        runs = _SCRIPTS[argv[0]].runs(Path("."), 0)
        unknown = [r for r in namespace.runs.split(",") if r not in runs and r != "..."]
        if unknown:
            return f"unknown run(s) {', '.join(unknown)}"
    return error


def unwrap(argv: list[str]) -> list[str]:
    """The command itself: without leading VAR=value assignments and /usr/bin/time."""
    while argv and re.match(r"^[A-Za-z_]\w*=", argv[0]):
        argv = argv[1:]
    while argv and argv[0] in ("/usr/bin/time", "time"):
        argv = argv[1:]
    return argv


def parse_error(command: Command) -> str:
    """Why COMMAND does not parse, or ''."""
    argv = unwrap(command.argv)
    if not argv:
        return ""
    if argv[0] == "ssl4rl":
        namespace, error = parse_ssl4rl(argv[1:])
        if namespace is not None or not command.inline:
            return error
        return fragment_error(command.text)  # inline code may be a part of a command
    if argv[0] == "python":
        if argv[1:2] == ["-m"]:
            if argv[2] == "ssl4rl":
                return parse_ssl4rl(argv[3:])[1]
            return "" if argv[2] in OTHER_MODULES else f"python -m {argv[2]}: not a module the docs may show (OTHER_MODULES)"
        if argv[1:2] == ["-c"]:
            try:
                compile(argv[2], "<-c>", "exec")
            except SyntaxError as error:
                return f"python -c: {error}"
            return ""
        return parse_python_script(argv[1:])
    if argv[0] in OTHER_TOOLS:
        return ""
    if "/" in argv[0]:
        return "" if (ROOT / argv[0]).is_file() else f"{argv[0]}: no such file in the repository"
    return f"{argv[0]}: a command the test does not know (add it to OTHER_TOOLS if it is another tool)"


def synopsis_parser(text: str):
    """The parser a synopsis or fragment is about, and its words after the command."""
    words = unwrap(shlex.split(without_brackets(strip_quotes(text))))
    if words[:1] == ["ssl4rl"]:
        return command_parser(words[1:])
    if words[:1] == ["python"] and len(words) > 1 and (ROOT / words[1]).is_file():
        return script_parse(words[1], ["--help"])[0], words[2:]
    return None, words


def fragment_error(text: str) -> str:
    """A synopsis or a part of a command: every flag must be one of its command's options, and
    every `a|b` list after an option with choices must hold choices of that option."""
    parser, _ = synopsis_parser(text)
    if parser is None:
        return ""
    options = options_of(parser)
    for flag in FLAG.findall(strip_quotes(text)):
        if flag not in options:
            return f"{flag}: no such option of `{parser.prog}`"
    for flag, listed in CHOICES.findall(text):
        action = options.get(flag)
        if action is not None and action.choices is not None:
            bad = [c for c in listed.split("|") if c not in action.choices]
            if bad:
                return f"{flag} {listed}: {', '.join(bad)} not among its choices {list(action.choices)}"
    return ""


def synopsis_error(command: Command) -> str:
    error = fragment_error(command.text)
    if error or command.inline:
        return error
    core = without_brackets(command.text)  # what is left must be a command
    return parse_error(Command(command.page, command.line, core, argv=shlex.split(strip_quotes(core))))


# ---------------------------------------------------------------- running


def run_plan(command: Command, made: set[str]) -> tuple[list[str] | None, str]:
    """(the `ssl4rl` argv to run, '') or (None, why not: a PARSE_ONLY key, or 'skipped' for
    other tools)."""
    argv = unwrap(command.argv)
    if not argv or argv[0] in OTHER_TOOLS or argv[:3] == ["python", "-m", "pytest"]:
        return None, "skipped"
    if command.inline:
        return None, "inline"
    if argv[0] == "python":
        return None, "bench" if argv[1].startswith("bench/") else "needs-input"
    if argv[0] != "ssl4rl":
        return None, "script"
    argv = placeholders(argv[1:])
    namespace, _ = parse_ssl4rl(argv)
    if namespace is None:
        return None, "unparsed"  # test_every_command_a_page_shows_parses says why
    name = namespace.command
    if name == "build":
        if namespace.source.split(":")[0] not in BUNDLED or namespace.engine != "local" or "://" in namespace.out:
            return None, "build-remote"
        argv = [SHAPES if a == "shapes" else a for a in argv]
        if namespace.limit is None or namespace.limit > RUN_LIMIT:
            argv += ["--limit", str(RUN_LIMIT)]
        if "--workers" not in argv:  # a pool works a window of images ahead of the limit
            argv += ["--workers", "1"]
        return argv + ([] if namespace.quiet else ["--quiet"]), ""
    if name == "tiny-model":  # without the warm-start, which takes minutes
        out, skip = [], False
        for a in argv:
            if skip or a in ("--warm-start", "--warm-start-steps"):
                skip = not skip
            elif a != "--warm-start-grey":
                out.append(a)
        return out, ""
    if name in ("show", "audit"):
        return (argv, "") if namespace.folder in made else (None, "needs-input")
    if name == "check":
        return (argv, "") if namespace.data in made and namespace.model in made else (None, "needs-input")
    if name in ("sources", "--help/--version") or (name == "train" and namespace.dry_run):
        return argv, ""
    return None, name


def makes(command: Command) -> bool:
    argv = unwrap(command.argv)
    return argv[:1] == ["ssl4rl"] and (parse_ssl4rl(argv[1:])[0] or argparse.Namespace(command=None)).command in ("build", "tiny-model")


def plans(commands: list[Command]) -> list[tuple[Command, list[str] | None, str]]:
    """What the run test does with each command of a page, builds and models first (the rest
    may use them), then the rest in the page's order."""
    made, first, rest = {"TINY_LM"}, [], []
    for command in commands:
        if makes(command):
            plan, reason = run_plan(command, made)
            if plan:
                namespace, _ = parse_ssl4rl(plan)
                made.add(namespace.out)
            first.append((command, plan, reason))
    for command in commands:
        if not makes(command):
            rest.append((command, *run_plan(command, made)))
    return first + rest


# ---------------------------------------------------------------- tests

_COMMANDS: dict[str, tuple[list[Command], list[Command]]] = {}


def commands_of(page: str, tmp_path_factory) -> tuple[list[Command], list[Command]]:
    if page not in _COMMANDS:
        _COMMANDS[page] = page_commands(page, tmp_path_factory.mktemp("bash"))
    return _COMMANDS[page]


@pytest.mark.parametrize("page", PAGES)
def test_every_command_a_page_shows_parses(page, tmp_path_factory):
    commands, synopses = commands_of(page, tmp_path_factory)
    errors = [f"{c.where()}\n    {e}" for c in commands if (e := parse_error(c))]
    errors += [f"{c.where()}\n    {e}" for c in synopses if (e := synopsis_error(c))]
    assert not errors, "\n".join(errors)


@pytest.fixture(scope="session")
def tiny_text_model(tmp_path_factory):
    """TINY_LM of docs/graphs.md: the tiny offline text model."""
    out = tmp_path_factory.mktemp("tiny-lm") / "model"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["tiny-model", str(out), "--text"]) == 0
    return out


@pytest.mark.parametrize("page", PAGES)
def test_the_cheap_commands_of_a_page_run(page, tmp_path_factory, tmp_path, monkeypatch, tiny_text_model):
    commands, _ = commands_of(page, tmp_path_factory)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "TINY_LM").symlink_to(tiny_text_model)
    for command, plan, _ in plans(commands):
        if plan is None:
            continue
        expected = next((s for (p, key), s in EXPECTED_STATUS.items() if p == page and key in command.text), 0)
        out, started = io.StringIO(), time.time()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                status = main(plan)
        except SystemExit as exit_:
            status = exit_.code
        assert status == expected, f"{command.where()}\n    ran: ssl4rl {' '.join(plan)}: status {status}, expected {expected}\n{out.getvalue()[-3000:]}"
        print(f"{time.time() - started:6.1f}s ssl4rl {' '.join(plan)}")


def test_every_command_that_is_not_run_has_a_reason(tmp_path_factory, capsys):
    counts: collections.Counter = collections.Counter()
    for page in PAGES:
        commands, synopses = commands_of(page, tmp_path_factory)
        for command, plan, reason in plans(commands):
            assert plan is not None or reason in PARSE_ONLY or reason == "skipped", f"{command.where()}: parsed only, and PARSE_ONLY gives no reason ({reason})"
            counts["run" if plan is not None else reason] += 1
        counts["synopsis (flags checked)"] += len(synopses)
    assert set(PARSE_ONLY) <= set(counts), f"PARSE_ONLY entries no command needs: {set(PARSE_ONLY) - set(counts)}"
    with capsys.disabled():
        print(f"\ndocumented commands: {dict(counts.most_common())}")


def all_options() -> dict[str, list[argparse.Action]]:
    """Every option of every `ssl4rl` command and of every bench script, by flag."""
    found: dict[str, list[argparse.Action]] = {}

    def walk(parser):
        for action in parser._actions:
            for flag in action.option_strings:
                found.setdefault(flag, []).append(action)
        sub = subparsers(parser)
        for child in sub.choices.values() if sub else []:
            walk(child)

    walk(cli_parser())
    for script in sorted([*ROOT.glob("bench/*.py"), ROOT / "scripts" / "graph_prompt_stats.py"]):
        parser, _, _ = script_parse(script.relative_to(ROOT).as_posix(), ["--help"])
        if parser is not None:
            walk(parser)
    return found


def prose_flag_error(code: str, options: dict[str, list[argparse.Action]]) -> str:
    """Inline code that starts with a flag (`--granularity 90`, `--backend trl`): the flag is an
    option of some command, and a value it shows is one of that option's choices where it has some."""
    for flag in FLAG.findall(strip_quotes(code)):
        if flag not in options and flag not in OTHER_FLAGS:
            return f"{flag}: no command has this option"
    value = re.match(r"^(--[a-z0-9-]+)[ =]([a-z][\w.-]*)$", code)
    if value and value.group(1) in options:
        actions = [a for a in options[value.group(1)] if a.choices is not None]
        if actions and not any(value.group(2) in a.choices for a in actions):
            return f"{value.group(2)}: not a choice of {value.group(1)} ({sorted({c for a in actions for c in a.choices})})"
    for flag, listed in CHOICES.findall(code):
        actions = [a for a in options.get(flag, []) if a.choices is not None]
        bad = [c for c in listed.split("|") if actions and not any(c in a.choices for a in actions)]
        if bad:
            return f"{flag} {listed}: {', '.join(bad)} not among its choices"
    return ""


def test_every_flag_named_in_prose_exists():
    options = all_options()
    errors = []
    for page in PAGES:
        _, prose = code_blocks((ROOT / page).read_text())
        for n, code in inline_spans(prose):
            if code.startswith("--") and (error := prose_flag_error(code, options)):
                errors.append(f"{page}:{n}: `{code}`\n    {error}")
    assert not errors, "\n".join(errors)
    assert prose_flag_error("--granularty 90", options) and prose_flag_error("--backend tpu", options)
    assert prose_flag_error("--backend auto|hf|tpu", options) and not prose_flag_error("--backend trl", options)


def test_a_flag_the_cli_does_not_have_fails(tmp_path):
    """The checks above fail on a page that shows a flag the CLI does not have, in every form a
    page shows commands."""
    page = tmp_path / "page.md"
    page.write_text(
        "Text with `ssl4rl audit DIR --jsn` inline.\n\n"
        "    ssl4rl build rotation --source samples --out d --granularty 90\n\n"
        "```bash\nssl4rl show d --out sheet.png --columns 4\n```\n\n"
        "    ssl4rl eval --model PATH --puzzles DIR --out OUT [--backend auto|hf|tpu] [--batch-size 8]\n"
        "    ssl4rl build rotation --source samples --out d [--test-fractoin F]\n"
        "    python bench/build_throughput.py --images 10 --bogus 1\n"
    )  # fmt: skip
    rel = page.relative_to(tmp_path)
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        (tmp_path / "bench").mkdir()
        (tmp_path / "bench" / "build_throughput.py").write_text((saved / "bench" / "build_throughput.py").read_text())
        commands, synopses = page_commands(str(rel), tmp_path)
        errors = [parse_error(c) for c in commands] + [synopsis_error(c) for c in synopses]
    finally:
        ROOT = saved
    assert len(commands) == 4 and len(synopses) == 2
    assert all(errors), list(zip([c.text for c in [*commands, *synopses]], errors))
    for bogus in ("--jsn", "--granularty", "--columns", "--bogus", "tpu", "--test-fractoin"):
        assert sum(bogus in e for e in errors) == 1, (bogus, errors)
