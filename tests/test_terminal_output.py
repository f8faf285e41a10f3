"""On a terminal, human output is drawn without rich: these check that it is what rich draws
there, byte for byte (width, wrapping, colours, the default table), and that rich is imported
only for what the terminal printer declines."""

import io
import os
import pty
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from kvmpmu.render import ansi
from kvmpmu.render.layout import Table, Text
from kvmpmu.render.plain import NotPlain
from kvmpmu.render.terminal import to_rich
from tests.clihelpers import ROOT
from tests.test_plain_output import ODD, PLAIN, renderables

# Words and spaces, so that cells and lines wrap; the names kvmpmu's tables hold.
WORDS = st.sampled_from(["a", "bb", "ccc dd", " ", "  ", "KVM_SET_DEVICE_ATTR", "x=1",
                         "(L3D_CACHE..LL_CACHE)", "0x29", "\n"])


def rich_draws(renderable, width: int, no_color: bool) -> str:
    out = io.StringIO()
    Console(file=out, force_terminal=True, width=width, no_color=no_color or None,
            highlight=False, soft_wrap=False, color_system="standard").print(to_rich(renderable))
    return out.getvalue()


@settings(max_examples=600)
@given(renderables(st.one_of(PLAIN, WORDS)), st.integers(1, 130), st.booleans())
def test_terminal_text_is_richs_or_declines(renderable, width, no_color):
    try:
        text = ansi.terminal_text(renderable, width, no_color)
    except NotPlain:
        return
    assert text == rich_draws(renderable, width, no_color)


@settings(max_examples=200)
@given(renderables(st.one_of(PLAIN, ODD)), st.integers(20, 130))
def test_markup_emoji_and_wide_text_are_left_to_rich(renderable, width):
    try:
        text = ansi.terminal_text(renderable, width, False)
    except NotPlain:
        return
    assert text == rich_draws(renderable, width, False)


def test_a_word_wider_than_its_column_is_cut_with_an_ellipsis_as_rich_does():
    table = Table(title=None)
    table.add_column("ioctl", no_wrap=True)
    table.add_column("value", no_wrap=True)
    table.add_row("KVM_SET_DEVICE_ATTR", "12345678")
    text = ansi.terminal_text(table, 26, no_color=True)
    assert text == rich_draws(table, 26, no_color=True)
    # 26 less 3 borders is 23 for 21 + 10: both columns give up 4 of the 8 too many
    assert text.splitlines()[3] == "│ KVM_SET_DEVICE… │ 123… │"


def test_a_table_too_wide_for_the_terminal_wraps_its_widest_column_as_rich_does():
    table = Table(title="VMM calls", title_justify="left")
    for header in ("#", "ioctl", "arguments"):
        table.add_column(header)
    table.add_row("9", "KVM_SET_DEVICE_ATTR", "base_event=0x29 nevents=4 action=DENY")
    text = ansi.terminal_text(table, 50, no_color=True)
    assert text == rich_draws(table, 50, no_color=True)
    # 50 columns less 4 borders: '#' keeps 3, ioctl 21, arguments the 22 left (20 and padding)
    assert text.splitlines()[4:7] == ["│ 9 │ KVM_SET_DEVICE_ATTR │ base_event=0x29      │",
                                      "│   │                     │ nevents=4            │",
                                      "│   │                     │ action=DENY          │"]


def test_styles_are_sgr_sequences_and_no_color_keeps_only_attributes(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    text = Text("ok", style="bold red")
    assert ansi.terminal_text(text, 80, no_color=False) == "\x1b[1;31mok\x1b[0m\n"
    assert ansi.terminal_text(text, 80, no_color=True) == "\x1b[1mok\x1b[0m\n"
    monkeypatch.setenv("NO_COLOR", "1")
    assert ansi.terminal_text(text, 80, no_color=False) == "\x1b[1mok\x1b[0m\n"


def test_the_width_is_richs(monkeypatch):
    monkeypatch.setenv("COLUMNS", "77")
    monkeypatch.setenv("TERM", "xterm")
    assert ansi.terminal_width() == 77
    monkeypatch.setenv("TERM", "dumb")  # rich prints no colours and 80 columns there
    with pytest.raises(NotPlain):
        ansi.terminal_width()


def in_a_terminal(code: str, args: list[str], columns: int) -> tuple[bytes, str]:
    """stdout (as the terminal shows it) and stderr of `python -c code args` in a pty."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    out = b""
    try:
        while chunk := os.read(master, 65536):
            out += chunk
    except OSError:  # EIO: the writer is gone
        pass
    os.close(master)
    return out, proc.communicate()[1].decode()


MAIN = ("import sys; from kvmpmu.cli.main import main; sys.argv = ['kvmpmu'] + sys.argv[1:]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('rich.')), file=sys.stderr)")
WITH_RICH = ("from kvmpmu.render import ansi, plain\n"
             "def declines(*_):\n    raise plain.NotPlain('')\n"
             "ansi.terminal_text = declines\n") + MAIN


@pytest.mark.parametrize("columns", [120, 80])
@pytest.mark.parametrize("args", [["run", "--filter", "configs/deny-shared-cache.yaml"],
                                  ["show-pmceid", "--filter", "configs/deny-shared-cache.yaml"],
                                  ["cpus"], ["presets"]])
def test_commands_draw_on_a_terminal_what_rich_draws_without_rich(args, columns):
    ours, modules = in_a_terminal(MAIN, args, columns)
    richs, _ = in_a_terminal(WITH_RICH, args, columns)
    assert ours == richs and b"\x1b[" in ours and "\u250f".encode() in ours
    assert modules.strip().splitlines()[-1] == "[]"
