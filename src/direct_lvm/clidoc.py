"""The man page direct-lvm(8) and the bash and zsh completions, generated from the
argparse parser (`cli.build_parser`), so a new subcommand or option appears in all three
by itself. Stdlib only; run at package build time:

    python3 -m direct_lvm.clidoc man|bash|zsh

What an option's value completes to comes from the parser: its `choices`, else its
dest/metavar (a name with config or file completes files; dir, root or out directories);
anything else completes to nothing."""

from __future__ import annotations

import argparse
import datetime
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

PROG = "direct-lvm"


@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]  # ("-v", "--verbose"); () for a positional
    dest: str
    metavar: str  # "" when the option takes no value
    help: str
    choices: tuple[str, ...] = ()
    required: bool = False
    default: str = ""

    @property
    def positional(self) -> bool:
        return not self.flags

    @property
    def takes_value(self) -> bool:
        return bool(self.metavar)

    @property
    def completes(self) -> str:
        """What the value completes to: "choices", "file", "dir" or ""."""
        if self.choices:
            return "choices"
        if not self.takes_value:
            return ""
        words = set(re.split(r"[^a-z]+", f"{self.dest} {self.metavar}".lower()))
        if words & {"dir", "directory", "root", "out"}:
            return "dir"
        if words & {"config", "file", "path"}:
            return "file"
        return ""


@dataclass(frozen=True)
class Command:
    name: str
    summary: str  # the one line in the top-level help
    description: str
    epilog: str
    raw: bool  # the parser keeps its own line breaks (Raw*HelpFormatter)
    options: tuple[Option, ...]
    groups: tuple[tuple[bool, tuple[str, ...]], ...] = field(default=())  # (required, dests)


def _text(parser: argparse.ArgumentParser, text: str | None) -> str:
    """A description or epilog as --help prints it (argparse formats it only when it
    names %(prog))."""
    if not text:
        return ""
    return text % {"prog": parser.prog} if "%(prog)" in text else text


def _option(parser: argparse.ArgumentParser, action: argparse.Action) -> Option:
    formatter = parser._get_formatter()
    help_text = formatter._expand_help(action) if action.help else ""
    metavar = ""
    if action.nargs != 0:
        if isinstance(action.metavar, str):
            metavar = action.metavar
        else:  # argparse's own default: DEST for an option, dest for a positional
            metavar = action.dest.upper() if action.option_strings else action.dest
    choices = tuple(str(c) for c in action.choices) if action.choices else ()
    default = ""
    if action.nargs != 0 and action.default not in (None, argparse.SUPPRESS):
        default = str(action.default)
    return Option(
        flags=tuple(action.option_strings),
        dest=action.dest,
        metavar=metavar,
        help=help_text,
        choices=choices,
        required=bool(action.required),
        default=default,
    )


def _visible(action: argparse.Action) -> bool:
    return action.help != argparse.SUPPRESS and not isinstance(action, argparse._SubParsersAction)


def _options(parser: argparse.ArgumentParser) -> tuple[Option, ...]:
    return tuple(_option(parser, a) for a in parser._actions if _visible(a))


def _raw(parser: argparse.ArgumentParser) -> bool:
    kind = parser.formatter_class
    return isinstance(kind, type) and issubclass(kind, argparse.RawDescriptionHelpFormatter)


def commands(parser: argparse.ArgumentParser) -> tuple[Command, ...]:
    """Every subcommand of the parser, in the order --help lists them."""
    out: list[Command] = []
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        summaries = {a.dest: a.help or "" for a in action._choices_actions}
        for name, sub in action.choices.items():
            if name not in summaries:  # an alias
                continue
            groups = tuple(
                (bool(g.required), tuple(a.dest for a in g._group_actions))
                for g in sub._mutually_exclusive_groups
            )
            out.append(
                Command(
                    name=name,
                    summary=summaries[name],
                    description=_text(sub, sub.description),
                    epilog=_text(sub, sub.epilog),
                    raw=_raw(sub),
                    options=_options(sub),
                    groups=groups,
                )
            )
    return tuple(out)


def _parser() -> argparse.ArgumentParser:
    from .cli import build_parser

    return build_parser()


# --- man page ---------------------------------------------------------------------------


def _roff(text: str) -> str:
    """Text for a roff line: backslashes, a leading dot or quote, and hyphens escaped."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return re.sub(r"^([.'])", r"\\&\1", text, flags=re.M)


def _paragraphs(text: str, raw: bool) -> Iterator[str]:
    for para in re.split(r"\n\s*\n", text.strip()):
        if not para.strip():
            continue
        if raw:
            yield ".nf\n" + _roff(para.rstrip()) + "\n.fi"
        else:
            yield _roff(" ".join(para.split()))


def _synopsis_item(opt: Option) -> str:
    if opt.positional:
        return f"\\fI{_roff(opt.metavar)}\\fR"
    flag = f"\\fB{_roff(opt.flags[-1])}\\fR"
    if opt.choices:
        return f"{flag} {{{'|'.join(_roff(c) for c in opt.choices)}}}"
    return f"{flag} \\fI{_roff(opt.metavar)}\\fR" if opt.takes_value else flag


def _synopsis(cmd: Command) -> str:
    by_dest = {o.dest: o for o in cmd.options}
    grouped = {d for _, dests in cmd.groups for d in dests}
    parts = [f"\\fB{_roff(PROG)} {_roff(cmd.name)}\\fR"]
    for required, dests in cmd.groups:
        alts = " | ".join(_synopsis_item(by_dest[d]) for d in dests if d in by_dest)
        parts.append(f"({alts})" if required else f"[{alts}]")
    for opt in cmd.options:
        if opt.dest == "help" or opt.dest in grouped:
            continue
        item = _synopsis_item(opt)
        parts.append(item if opt.positional or opt.required else f"[{item}]")
    return " ".join(parts)


def _man_option(opt: Option) -> str:
    if opt.positional:
        head = f"\\fI{_roff(opt.metavar)}\\fR"
    else:
        value = ""
        if opt.choices:
            value = " {" + ",".join(_roff(c) for c in opt.choices) + "}"
        elif opt.takes_value:
            value = f" \\fI{_roff(opt.metavar)}\\fR"
        head = ", ".join(f"\\fB{_roff(f)}\\fR{value}" for f in opt.flags)
    body = _roff(" ".join(opt.help.split())) if opt.help else ""
    return f".TP\n{head}\n{body}".rstrip("\n")


def _man_date() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = (
        datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc)
        if epoch and epoch.isdigit()
        else datetime.datetime.now(datetime.timezone.utc)
    )
    return when.strftime("%Y-%m-%d")


def man(parser: argparse.ArgumentParser) -> str:
    from . import __version__

    cmds = commands(parser)
    lines = [
        f'.TH DIRECT\\-LVM 8 "{_man_date()}" "{_roff(PROG)} {__version__}" "System Administration"',
        ".SH NAME",
        f"{_roff(PROG)} \\- {_roff(_text(parser, parser.description) or PROG)}",
        ".SH SYNOPSIS",
    ]
    globals_ = " ".join(
        f"[{_synopsis_item(o)}]" for o in _options(parser) if o.dest not in ("help", "version")
    )
    lines += [f"\\fB{_roff(PROG)}\\fR {globals_} \\fICOMMAND\\fR [\\fIARGS\\fR]".replace("  ", " ")]
    for cmd in cmds:
        lines += [".br", _synopsis(cmd)]
    lines += [".SH DESCRIPTION"]
    lines += _join_paragraphs(_paragraphs(_text(parser, parser.description), _raw(parser)))
    lines += [".SH OPTIONS"]
    lines += [_man_option(o) for o in _options(parser)]
    lines += [".SH COMMANDS"]
    for cmd in cmds:
        lines += [".SS " + _roff(f"{PROG} {cmd.name}"), _synopsis(cmd), ".PP"]
        lines += _join_paragraphs(_paragraphs(cmd.summary, False))
        if cmd.description and cmd.description != cmd.summary:
            lines += [".PP", *_join_paragraphs(_paragraphs(cmd.description, cmd.raw))]
        lines += [_man_option(o) for o in cmd.options if o.dest != "help"]
        if cmd.epilog:
            lines += [".PP", *_join_paragraphs(_paragraphs(cmd.epilog, cmd.raw))]
    epilog = _text(parser, parser.epilog)
    if epilog:
        lines += [".SH EXIT STATUS", *_join_paragraphs(_paragraphs(epilog, _raw(parser)))]
    lines += [
        ".SH FILES",
        ".TP",
        "\\fI/etc/direct\\-lvm/config.yaml\\fR",
        "The config the cloud\\-init module reads at boot when user\\-data carries it as a file.",
        ".TP",
        "\\fI/var/lib/direct\\-lvm/devices.json\\fR",
        "Which disk each devices entry chose, recorded by apply.",
        ".SH SEE ALSO",
        "\\fBlvm\\fR(8), \\fBlvmthin\\fR(7), \\fBlvcreate\\fR(8), \\fBcloud\\-init\\fR(1), "
        "\\fBdockerd\\fR(8)",
    ]
    return "\n".join(lines) + "\n"


def _join_paragraphs(paras: Iterator[str]) -> list[str]:
    out: list[str] = []
    for k, para in enumerate(paras):
        if k:
            out.append(".PP")
        out.append(para)
    return out


# --- bash ---------------------------------------------------------------------------------


def _sh_words(words: Sequence[str]) -> str:
    """Words for a bash or zsh single-quoted string (the generator's own names and
    choices: no quote in them, checked)."""
    for w in words:
        if "'" in w:
            raise ValueError(f"clidoc: a quote in {w!r} cannot go into a completion word list")
    return " ".join(words)


def _value_cases(opts: Sequence[Option], indent: str) -> list[str]:
    """bash `case "$prev"` arms: what follows an option that takes a value."""
    lines: list[str] = []
    for opt in opts:
        if opt.positional or not opt.takes_value:
            continue
        pattern = "|".join(opt.flags)
        if opt.completes == "choices":
            action = f"COMPREPLY=($(compgen -W '{_sh_words(opt.choices)}' -- \"$cur\"))"
        elif opt.completes == "dir":
            action = 'compopt -o filenames; COMPREPLY=($(compgen -d -- "$cur"))'
        elif opt.completes == "file":
            action = 'compopt -o filenames; COMPREPLY=($(compgen -f -- "$cur"))'
        else:
            action = "COMPREPLY=()"
        lines.append(f"{indent}{pattern}) {action}; return ;;")
    return lines


def bash(parser: argparse.ArgumentParser) -> str:
    cmds = commands(parser)
    top = _options(parser)
    top_flags = [f for o in top for f in o.flags]
    top_valued = [f for o in top if o.takes_value for f in o.flags]
    lines = [
        f"# bash completion for {PROG}; generated from its argparse parser by",
        "# `python3 -m direct_lvm.clidoc bash`: do not edit.",
        "_direct_lvm() {",
        '  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
        "  local cmd='' i=1",
        "  while ((i < COMP_CWORD)); do",
        '    case "${COMP_WORDS[i]}" in',
    ]
    if top_valued:
        lines.append(f"      {'|'.join(top_valued)}) ((i++)) ;;")
    lines += [
        "      -*) ;;",
        '      *) cmd="${COMP_WORDS[i]}"; break ;;',
        "    esac",
        "    ((i++))",
        "  done",
        '  if [[ -z "$cmd" ]]; then',
        '    case "$prev" in',
        *_value_cases(top, "      "),
        "    esac",
        '    if [[ "$cur" == -* ]]; then',
        f"      COMPREPLY=($(compgen -W '{_sh_words(top_flags)}' -- \"$cur\"))",
        "    else",
        f"      COMPREPLY=($(compgen -W '{_sh_words([c.name for c in cmds])}' -- \"$cur\"))",
        "    fi",
        "    return",
        "  fi",
        '  case "$cmd" in',
    ]
    for cmd in cmds:
        flags = [f for o in cmd.options for f in o.flags]
        positional = [o for o in cmd.options if o.positional]
        lines += [
            f"    {cmd.name})",
            '      case "$prev" in',
            *_value_cases(cmd.options, "        "),
        ]
        lines += ["      esac", '      if [[ "$cur" == -* ]]; then']
        lines.append(f"        COMPREPLY=($(compgen -W '{_sh_words(flags)}' -- \"$cur\"))")
        if positional:
            first = positional[0]
            if first.completes == "choices":
                words = _sh_words(first.choices)
                lines += ["      else", f"        COMPREPLY=($(compgen -W '{words}' -- \"$cur\"))"]
            elif first.completes in ("file", "dir"):
                flag = "-d" if first.completes == "dir" else "-f"
                lines += [
                    "      else",
                    f'        compopt -o filenames; COMPREPLY=($(compgen {flag} -- "$cur"))',
                ]
        lines += ["      fi", "      ;;"]
    lines += [
        "  esac",
        "}",
        f"complete -F _direct_lvm {PROG}",
    ]
    return "\n".join(lines) + "\n"


# --- zsh ----------------------------------------------------------------------------------


def _zsh_help(text: str) -> str:
    """An _arguments description: inside [...] in a single-quoted word."""
    text = " ".join(text.split())
    text = text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
    text = text.replace(":", "\\:")
    return text.replace("'", "'\\''")


def _zsh_action(opt: Option) -> str:
    """The _arguments action completing the option's value."""
    if opt.completes == "choices":
        return f"({_sh_words(opt.choices)})"
    return {"dir": "_files -/", "file": "_files"}.get(opt.completes, " ")


def _zsh_specs(opts: Sequence[Option], groups: Sequence[tuple[bool, Sequence[str]]]) -> list[str]:
    """_arguments specs, each a shell word (single-quoted parts)."""
    by_dest = {o.dest: o for o in opts}
    specs: list[str] = []
    n = 0
    for opt in opts:
        name = opt.metavar.lower().replace(":", "")
        if opt.positional:
            n += 1
            specs.append(f"'{n}:{name}:{_zsh_action(opt)}'")
            continue
        excl = list(opt.flags) if len(opt.flags) > 1 else []
        for _, dests in groups:
            if opt.dest in dests:
                excl += [f for d in dests if d in by_dest for f in by_dest[d].flags]
        if opt.dest in ("help", "version"):  # nothing else after these
            excl = ["-", "*"]
        prefix = f"({' '.join(dict.fromkeys(excl))})" if excl else ""
        desc = f"[{_zsh_help(opt.help)}]" if opt.help else ""
        value = f":{name}:{_zsh_action(opt)}" if opt.takes_value else ""
        if len(opt.flags) > 1:
            specs.append(f"'{prefix}'{{{','.join(opt.flags)}}}'{desc}{value}'")
        else:
            specs.append(f"'{prefix}{opt.flags[0]}{desc}{value}'")
    return specs


def zsh(parser: argparse.ArgumentParser) -> str:
    cmds = commands(parser)
    lines = [
        f"#compdef {PROG}",
        f"# zsh completion for {PROG}; generated from its argparse parser by",
        "# `python3 -m direct_lvm.clidoc zsh`: do not edit.",
        "_direct_lvm() {",
        '  local curcontext="$curcontext" state line',
        "  typeset -A opt_args",
        "  _arguments -C \\",
    ]
    for spec in _zsh_specs(_options(parser), []):
        lines.append(f"    {spec} \\")
    lines += [
        "    '1:command:->command' \\",
        "    '*:: :->args'",
        "  case $state in",
        "    command)",
        "      local -a commands",
        "      commands=(",
    ]
    for cmd in cmds:
        lines.append(f"        '{cmd.name}:{_zsh_help(cmd.summary)}'")
    lines += [
        "      )",
        f"      _describe -t commands '{PROG} command' commands",
        "      ;;",
        "    args)",
        "      curcontext=${curcontext%:*:*}:" + PROG + "-$words[1]:",
        "      case $words[1] in",
    ]
    for cmd in cmds:
        specs = _zsh_specs(cmd.options, cmd.groups)
        lines.append(f"        {cmd.name})")
        lines.append("          _arguments \\")
        lines += [f"            {s} \\" for s in specs[:-1]]
        lines.append(f"            {specs[-1]}" if specs else "            ''")
        lines.append("          ;;")
    lines += [
        "      esac",
        "      ;;",
        "  esac",
        "}",
        '_direct_lvm "$@"',
    ]
    return "\n".join(lines) + "\n"


GENERATORS = {"man": man, "bash": bash, "zsh": zsh}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] not in GENERATORS:
        print(f"usage: python3 -m direct_lvm.clidoc {{{'|'.join(GENERATORS)}}}", file=sys.stderr)
        return 2
    sys.stdout.write(GENERATORS[args[0]](_parser()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
