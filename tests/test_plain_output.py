"""Off a terminal, human output is printed without rich: these check that it is what rich
prints there, byte for byte, for any table, text and group the renderers can build, and that
rich is imported only for what the plain printer declines (markup, emoji codes, wide text)."""

import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from kvmpmu.render import terminal
from kvmpmu.render.layout import Group, Table, Text
from kvmpmu.render.plain import NotPlain, columns, plain_text
from tests.clihelpers import ROOT

STYLES = st.sampled_from(["", "bold", "green", "bold red", "italic", "yellow", "dim"])
# What kvmpmu's tables hold: names, numbers, paths, the ellipsis of a cut table...
PLAIN = st.sampled_from(list("abcXYZ_019 .,=|()-+/x#'") + ["\u2026"])
# ...and what rich reads differently or measures otherwise.
ODD = st.sampled_from(["[", "[bold]", "]", ":", ":100:", ":smile:", "\u00e9", "\u4e2d", "\t",
                       "\n"])


def texts(pieces):
    return st.lists(pieces, max_size=10).map("".join)


def rich_text_of(pieces):
    @st.composite
    def build(draw):
        text = Text(draw(texts(pieces)), style=draw(STYLES))
        for _ in range(draw(st.integers(0, 3))):
            if draw(st.booleans()):
                text.append(draw(texts(pieces)), style=draw(STYLES) or None)
            else:
                text.append_text(Text(draw(texts(pieces)), style=draw(STYLES)))
        if draw(st.booleans()):
            text.rstrip()
        return text
    return build()


def tables(pieces):
    @st.composite
    def build(draw):
        table = Table(title=draw(st.one_of(st.none(), texts(pieces).filter(bool))),
                      title_justify="left")
        ncols = draw(st.integers(1, 5))
        for _ in range(ncols):
            table.add_column(draw(texts(pieces)), justify=draw(st.sampled_from(["left", "right"])),
                             no_wrap=draw(st.booleans()))
        for _ in range(draw(st.integers(0, 4))):
            cells = draw(st.lists(st.one_of(texts(pieces), rich_text_of(pieces)),
                                  min_size=0, max_size=ncols))
            table.add_row(*cells)
        return table
    return build()


def renderables(pieces):
    leaf = st.one_of(tables(pieces), rich_text_of(pieces))
    return st.one_of(leaf, st.lists(leaf, max_size=3).map(lambda parts: Group(*parts)))


def rich_prints(renderable) -> str:
    return terminal.render(renderable, terminal=False, no_color=False)


@settings(max_examples=400)
@given(renderables(PLAIN))
def test_plain_text_is_richs_and_needs_no_rich(renderable):
    assert plain_text(renderable) == rich_prints(renderable)


@settings(max_examples=400)
@given(renderables(st.one_of(PLAIN, ODD)))
def test_plain_text_is_richs_or_declines(renderable):
    try:
        text = plain_text(renderable)
    except NotPlain:
        return
    assert text == rich_prints(renderable)


def test_a_location_with_an_emoji_line_number_is_left_to_rich():
    # rich reads ":100:" in a str cell as the emoji code for U+1F4AF
    table = Table(title="Expectations", title_justify="left")
    table.add_column("location")
    table.add_row("w.yaml:100:5")
    try:
        plain_text(table)
        raise AssertionError("plain_text took a cell rich changes")
    except NotPlain:
        pass
    assert "\U0001f4af" in rich_prints(table)


def test_columns_pad_to_the_widest_cell_and_strip_the_line_end():
    text = columns("T", ["a", "bb", "c"], [["xyz", Text("y", style="green"), ""], ["1", "2", "3"]])
    assert plain_text(text) == "T\na    bb  c\nxyz  y\n1    2   3\n"


def test_run_and_show_pmceid_print_off_a_terminal_without_rich():
    code = ("import sys; from kvmpmu.cli.main import main; sys.argv = ['kvmpmu'] + sys.argv[1:]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('rich')), file=sys.stderr)")
    for args in (["run", "--filter", "configs/deny-shared-cache.yaml"],
                 ["show-pmceid", "--filter", "configs/deny-shared-cache.yaml"]):
        result = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT,
                                capture_output=True, text=True, check=True)
        assert result.stderr.strip().splitlines()[-1] == "[]", args
