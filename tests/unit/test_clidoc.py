"""The man page and completions come from the parser: whatever the parser has, they list.
(Shell syntax checks of the output run commands: tests/packaging/test_clidoc_shells.py.)"""

from __future__ import annotations

import argparse
import re

import pytest

from direct_lvm import clidoc
from direct_lvm.cli import build_parser


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("the CLI has no subcommands")


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    return [f for a in parser._actions for f in a.option_strings]


def _unroff(text: str) -> str:
    return text.replace("\\-", "-").replace("\\fB", "").replace("\\fI", "").replace("\\fR", "")


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    return build_parser()


@pytest.fixture(scope="module", params=sorted(clidoc.GENERATORS))
def output(request: pytest.FixtureRequest, parser: argparse.ArgumentParser) -> str:
    text = clidoc.GENERATORS[request.param](parser)
    return _unroff(text) if request.param == "man" else text


def test_every_subcommand_and_option_of_the_parser_is_in_each_output(parser, output):
    subs = _subparsers(parser)
    assert len(subs) >= 6
    for flag in _flags(parser):
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", output), flag
    for name, sub in subs.items():
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", output), name
        for flag in _flags(sub):
            assert flag in output, f"{name} {flag}"
        for action in sub._actions:
            for choice in action.choices or ():
                if not isinstance(action, argparse._SubParsersAction):
                    assert re.search(rf"\b{re.escape(str(choice))}\b", output), choice


def test_commands_keeps_the_help_order_and_summaries(parser):
    cmds = clidoc.commands(parser)
    assert [c.name for c in cmds] == list(_subparsers(parser))
    assert all(c.summary for c in cmds)


def test_man_page_sections_and_each_command_with_its_options(parser):
    page = clidoc.man(parser)
    assert page.startswith(".TH DIRECT\\-LVM 8 ")
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "EXIT STATUS"):
        assert f"\n.SH {section}\n" in page
    for cmd in clidoc.commands(parser):
        block = page.split(".SS " + clidoc._roff(f"direct-lvm {cmd.name}") + "\n")[1]
        block = block.split("\n.SS ")[0].split("\n.SH ")[0]
        for opt in cmd.options:
            if opt.dest != "help":
                head = opt.metavar if opt.positional else opt.flags[-1]
                assert clidoc._roff(head) + "\\fR" in block, f"{cmd.name} {head}"


def test_man_page_is_reproducible_from_source_date_epoch(parser, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "86400")
    assert '"1970-01-02"' in clidoc.man(parser).splitlines()[0]


def test_roff_escapes_hyphens_backslashes_and_leading_control_characters():
    assert clidoc._roff("--dry-run") == "\\-\\-dry\\-run"
    assert clidoc._roff("a\\b") == "a\\eb"
    assert clidoc._roff(".foo\n'bar") == "\\&.foo\n\\&'bar"


def _toy() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="direct-lvm", description="toy %(prog)s")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "toy",
        help="a [toy]: it's here",
        epilog="line one\n  kept indent\n\n.a dot",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("kind", choices=["thin", "thick"], help="which one")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--out-dir", help="where (default %(default)s)", default="/tmp")
    which.add_argument("--config-file", metavar="FILE")
    p.add_argument("--timeout", type=int, help="seconds")
    p.add_argument("--format", choices=["text", "json"], default="text")
    return parser


def test_what_a_value_completes_to_comes_from_choices_and_names():
    (cmd,) = clidoc.commands(_toy())
    by_dest = {o.dest: o for o in cmd.options}
    assert by_dest["kind"].completes == "choices"
    assert by_dest["format"].completes == "choices"
    assert by_dest["out_dir"].completes == "dir"
    assert by_dest["config_file"].completes == "file"
    assert by_dest["timeout"].completes == ""  # "timeout" holds "out", not as a word
    assert by_dest["help"].completes == ""
    assert by_dest["out_dir"].help == "where (default /tmp)"  # expanded as --help does


def test_toy_parser_in_man_bash_and_zsh():
    parser = _toy()
    page = clidoc.man(parser)
    assert "toy direct\\-lvm" in page  # %(prog)s in a description, as --help shows it
    assert ".nf\nline one\n  kept indent\n.fi" in page  # a raw epilog keeps its lines
    assert "\\&.a dot" in page
    assert (
        "[\\fB\\-\\-out\\-dir\\fR \\fIOUT_DIR\\fR | \\fB\\-\\-config\\-file\\fR \\fIFILE\\fR]"
        in page
    )

    sh = clidoc.bash(parser)
    assert "--timeout) COMPREPLY=(); return ;;" in sh
    assert "--out-dir) compopt -o filenames; COMPREPLY=($(compgen -d" in sh
    assert "--config-file) compopt -o filenames; COMPREPLY=($(compgen -f" in sh
    assert "COMPREPLY=($(compgen -W 'thin thick' -- \"$cur\"))" in sh

    z = clidoc.zsh(parser)
    assert "'toy:a \\[toy\\]\\: it'\\''s here'" in z
    assert "'1:kind:(thin thick)'" in z
    assert "'(--out-dir --config-file)--out-dir[where (default /tmp)]:out_dir:_files -/'" in z
    assert "'--format:format:(text json)'" in z


def test_a_quote_in_a_choice_is_refused_not_written_into_the_script():
    parser = argparse.ArgumentParser(prog="direct-lvm")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("x", help="x").add_argument("--mode", choices=["it's"])
    with pytest.raises(ValueError, match="it's"):
        clidoc.bash(parser)


def test_main_prints_the_chosen_output_and_refuses_others(capsys):
    assert clidoc.main(["bash"]) == 0
    assert "complete -F _direct_lvm direct-lvm" in capsys.readouterr().out
    assert clidoc.main(["fish"]) == 2
    assert "man|bash|zsh" in capsys.readouterr().err
