"""The A64 encoder against two independent implementations: keystone assembles the same text
(the bytes must be equal) and capstone disassembles our words (the mnemonic and operands must
be what we meant, in capstone's own spelling of aliases such as MOV, CMP and LSR)."""

from dataclasses import dataclass

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kvmpmu.arch import a64

keystone = pytest.importorskip("keystone", reason="the `guest` extra (keystone) is not installed")
capstone = pytest.importorskip("capstone", reason="the `guest` extra (capstone) is not installed")

BASE = 0x40080000
KS = keystone.Ks(keystone.KS_ARCH_ARM64, keystone.KS_MODE_LITTLE_ENDIAN)
CS = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
CS_DETAIL = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
CS_DETAIL.detail = True

regs = st.integers(0, 31)
gprs = st.integers(0, 30)


def x(r: int, zero: bool = True) -> str:
    """X<r>; register 31 is XZR (`zero`) or SP."""
    return f"x{r}" if r < 31 else ("xzr" if zero else "sp")


def imm(v: int) -> str:
    """An immediate as capstone prints it: decimal up to 9, else hex."""
    return f"#{v}" if -9 <= v <= 9 else (f"#{v:#x}" if v > 0 else f"#-{-v:#x}")


def signed64(v: int) -> int:
    """Capstone prints MOV immediates as signed 64-bit values."""
    return v - 2**64 if v >= 2**63 else v


def ours(*words: int) -> bytes:
    return b"".join(w.to_bytes(4, "little") for w in words)


def assembled(text: str, address: int = BASE) -> bytes:
    encoding, _ = KS.asm(text, address)
    return bytes(encoding)


def disassembled(word: int, address: int = BASE) -> tuple[str, str]:
    (insn,) = CS.disasm(ours(word), address)
    return insn.mnemonic, insn.op_str


def check(word: int, text: str, mnemonic: str, operands: str, address: int = BASE) -> None:
    assert ours(word) == assembled(text, address), text
    assert disassembled(word, address) == (mnemonic, operands), text


# --- moves --------------------------------------------------------------------------------------

@given(gprs, st.integers(0, 0xFFFF), st.sampled_from([0, 16, 32, 48]))
def test_movz(rd, value, shift):
    # capstone shows MOVZ as MOV of the whole value, except #0 with a shift
    shown = ("movz", f"{x(rd)}, #0, lsl #{shift}") if value == 0 and shift else \
        ("mov", f"{x(rd)}, {imm(signed64(value << shift))}")
    check(a64.movz(rd, value, shift), f"movz {x(rd)}, #{value}, lsl #{shift}", *shown)


@given(gprs, st.integers(0, 0xFFFF), st.sampled_from([0, 16, 32, 48]))
def test_movk(rd, value, shift):
    suffix = f", lsl #{shift}" if shift else ""
    check(a64.movk(rd, value, shift), f"movk {x(rd)}, #{value}, lsl #{shift}", "movk",
          f"{x(rd)}, {imm(value)}{suffix}")


@given(gprs, st.one_of(st.integers(0, 2**64 - 1), st.sampled_from(
    [0, 1, 0xFFFF, 0x10000, 2**32, 2**48, 2**64 - 1, 0xFFFF0000FFFF0000])))
def test_mov_imm_builds_any_constant(rd, value):
    words = a64.mov_imm(rd, value)
    halves = [value >> s & 0xFFFF for s in (0, 16, 32, 48)]
    assert len(words) == max(1, sum(1 for h in halves if h))  # one word per non-zero halfword
    text = "; ".join(f"{'movz' if i == 0 else 'movk'} {x(rd)}, #{h}, lsl #{s}" for i, (s, h) in
                     enumerate((s, h) for s, h in zip((0, 16, 32, 48), halves, strict=True)
                               if h or (value == 0 and s == 0)))
    assert ours(*words) == assembled(text)


def test_mov_imm_runs_to_the_value():
    """Executed: the register holds the constant (unicorn, independent of both tools)."""
    unicorn = pytest.importorskip("unicorn")
    from unicorn.arm64_const import UC_ARM64_REG_X7

    for value in (0, 5, 0xFFFF_0000, 0x1234_5678_9ABC_DEF0, 2**64 - 1, 2**63):
        code = ours(*a64.mov_imm(7, value))
        uc = unicorn.Uc(unicorn.UC_ARCH_ARM64, unicorn.UC_MODE_ARM)
        uc.mem_map(BASE, 0x1000)
        uc.mem_write(BASE, code)
        uc.reg_write(UC_ARM64_REG_X7, 0xDEAD_BEEF)
        uc.emu_start(BASE, BASE + len(code))
        assert uc.reg_read(UC_ARM64_REG_X7) == value


# --- system registers ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Reg:
    op0: int
    op1: int
    crn: int
    crm: int
    op2: int

    @property
    def generic(self) -> str:
        return f"s{self.op0}_{self.op1}_c{self.crn}_c{self.crm}_{self.op2}"

    @property
    def encoding(self) -> int:  # as capstone numbers system registers
        return self.op0 << 14 | self.op1 << 11 | self.crn << 7 | self.crm << 3 | self.op2


sysregs = st.builds(Reg, st.integers(2, 3), st.integers(0, 7), st.integers(0, 15),
                    st.integers(0, 15), st.integers(0, 7))


def sys_operands(word: int) -> tuple[str, list[tuple[str, int]]]:
    (insn,) = CS_DETAIL.disasm(ours(word), BASE)
    from capstone import arm64_const as cs_a64

    kinds = []
    for op in insn.operands:
        if op.type == cs_a64.ARM64_OP_REG:
            name = insn.reg_name(op.reg)
            kinds.append(("reg", {"fp": "x29", "lr": "x30"}.get(name, name)))
        else:
            kinds.append(("sys", op.reg))
    return insn.mnemonic, kinds


@given(regs, sysregs)
def test_mrs(rt, reg):
    word = a64.mrs(rt, reg)
    assert ours(word) == assembled(f"mrs {x(rt)}, {reg.generic}")
    assert sys_operands(word) == ("mrs", [("reg", x(rt)), ("sys", reg.encoding)])


@given(regs, sysregs)
def test_msr(rt, reg):
    word = a64.msr(reg, rt)
    assert ours(word) == assembled(f"msr {reg.generic}, {x(rt)}")
    assert sys_operands(word) == ("msr", [("sys", reg.encoding), ("reg", x(rt))])


def test_named_registers_disassemble_by_name():
    from kvmpmu.arch.sysregs import EXCEPTION_SYSREGS, SYSREGS

    for name, reg in {**SYSREGS, **EXCEPTION_SYSREGS}.items():
        if name in ("PMSWINC_EL0",):  # write-only: capstone names it only in MSR
            continue
        assert disassembled(a64.mrs(0, reg)) == ("mrs", f"x0, {name.lower()}"), name
    assert disassembled(a64.msr(SYSREGS["PMSWINC_EL0"], 1)) == ("msr", "pmswinc_el0, x1")


# --- loads and stores ---------------------------------------------------------------------------

offsets8 = st.integers(0, 4095).map(lambda n: n * 8)


@pytest.mark.parametrize("name,fn", [("str", a64.str_imm), ("ldr", a64.ldr_imm)])
@given(rt=regs, rn=regs, offset=offsets8)
def test_load_store(name, fn, rt, rn, offset):
    address = f"[{x(rn, zero=False)}" + (f", {imm(offset)}]" if offset else "]")
    check(fn(rt, rn, offset), f"{name} {x(rt)}, [{x(rn, zero=False)}, #{offset}]", name,
          f"{x(rt)}, {address}")


@given(rt=regs, rn=gprs, step=st.integers(1, 255))
def test_store_post_index(rt, rn, step):
    if rt == rn:
        with pytest.raises(a64.EncodingError, match="UNPREDICTABLE"):
            a64.str_post(rt, rn, step)
        return
    check(a64.str_post(rt, rn, step), f"str {x(rt)}, [{x(rn)}], #{step}", "str",
          f"{x(rt)}, [{x(rn)}], {imm(step)}")


@given(rt=regs, rn=gprs, step=st.integers(-256, -1))
def test_store_post_index_backwards(rt, rn, step):
    assume(rt != rn)  # UNPREDICTABLE: the test above
    assert ours(a64.str_post(rt, rn, step)) == assembled(f"str {x(rt)}, [{x(rn)}], #{step}")


# --- arithmetic ---------------------------------------------------------------------------------

imm12 = st.integers(0, 0xFFF)
shift12 = st.sampled_from([0, 12])


def _lsl(shift: int) -> str:
    return f", lsl #{shift}" if shift else ""


@given(regs, regs, imm12, shift12)
def test_add(rd, rn, value, shift):
    text = f"add {x(rd, False)}, {x(rn, False)}, #{value}, lsl #{shift}"
    if value == 0 and shift == 0 and 31 in (rd, rn):  # ADD to or from SP of #0 is MOV
        shown = ("mov", f"{x(rd, False)}, {x(rn, False)}")
    else:
        shown = ("add", f"{x(rd, False)}, {x(rn, False)}, {imm(value)}{_lsl(shift)}")
    check(a64.add_imm(rd, rn, value, shift), text, *shown)


@given(regs, regs, imm12, shift12)
def test_sub(rd, rn, value, shift):
    check(a64.sub_imm(rd, rn, value, shift),
          f"sub {x(rd, False)}, {x(rn, False)}, #{value}, lsl #{shift}", "sub",
          f"{x(rd, False)}, {x(rn, False)}, {imm(value)}{_lsl(shift)}")


@given(regs, regs, imm12, shift12)
def test_subs_and_cmp(rd, rn, value, shift):
    text = f"subs {x(rd)}, {x(rn, False)}, #{value}, lsl #{shift}"
    shown = ("cmp", f"{x(rn, False)}, {imm(value)}{_lsl(shift)}") if rd == 31 else \
        ("subs", f"{x(rd)}, {x(rn, False)}, {imm(value)}{_lsl(shift)}")
    check(a64.subs_imm(rd, rn, value, shift), text, *shown)


@given(regs, regs, st.integers(0, 63).flatmap(
    lambda lsb: st.tuples(st.just(lsb), st.integers(1, 64 - lsb))))
def test_ubfx(rd, rn, field):
    lsb, width = field
    text = f"ubfm {x(rd)}, {x(rn)}, #{lsb}, #{lsb + width - 1}"
    shown = ("lsr", f"{x(rd)}, {x(rn)}, {imm(lsb)}") if lsb + width == 64 else \
        ("ubfx", f"{x(rd)}, {x(rn)}, {imm(lsb)}, {imm(width)}")
    check(a64.ubfx(rd, rn, lsb, width), text, *shown)


# --- branches and exceptions --------------------------------------------------------------------

def words_offset(bits: int) -> st.SearchStrategy[int]:
    half = 1 << (bits - 1)
    return st.integers(-half, half - 1).map(lambda n: 4 * n)


@given(words_offset(26))
def test_b(offset):
    check(a64.b(offset), f"b #{BASE + offset:#x}", "b", f"#{BASE + offset:#x}")


@given(st.sampled_from(sorted(a64.CONDITIONS)), words_offset(19))
def test_b_cond(cond, offset):
    check(a64.b_cond(cond, offset), f"b.{cond} #{BASE + offset:#x}", f"b.{cond}",
          f"#{BASE + offset:#x}")


@pytest.mark.parametrize("name,fn", [("cbz", a64.cbz), ("cbnz", a64.cbnz)])
@given(rt=regs, offset=words_offset(19))
def test_compare_and_branch(name, fn, rt, offset):
    check(fn(rt, offset), f"{name} {x(rt)}, #{BASE + offset:#x}", name,
          f"{x(rt)}, #{BASE + offset:#x}")


@given(gprs, st.integers(-(1 << 20), (1 << 20) - 1))
def test_adr(rd, offset):
    sign = "+" if offset >= 0 else "-"
    check(a64.adr(rd, offset), f"adr {x(rd)}, . {sign} {abs(offset)}", "adr",
          f"{x(rd)}, #{BASE + offset:#x}")


@given(st.integers(0, 0xFFFF))
def test_svc(value):
    check(a64.svc(value), f"svc #{value}", "svc", imm(value))


@pytest.mark.parametrize("fn,name", [(a64.eret, "eret"), (a64.isb, "isb"), (a64.nop, "nop")])
def test_no_operand_instructions(fn, name):
    check(fn(), name, name, "")


@pytest.mark.parametrize("call", [
    lambda: a64.movz(0, 0x10000), lambda: a64.movz(0, 1, 8), lambda: a64.mov_imm(0, -1),
    lambda: a64.mov_imm(0, 2**64), lambda: a64.str_imm(0, 1, 4), lambda: a64.str_imm(0, 1, 32768),
    lambda: a64.add_imm(0, 1, 0x1000), lambda: a64.b(2), lambda: a64.b(1 << 27),
    lambda: a64.cbz(0, -(1 << 20) - 4), lambda: a64.b_cond("xx", 0), lambda: a64.adr(0, 1 << 20),
    lambda: a64.svc(0x10000), lambda: a64.ubfx(0, 1, 60, 5),
    lambda: a64.mrs(32, Reg(3, 0, 0, 0, 0)), lambda: a64.mrs(0, Reg(1, 0, 0, 0, 0)),
    lambda: a64.msr(Reg(3, 8, 0, 0, 0), 0)])
def test_operands_out_of_range_are_refused(call):
    with pytest.raises(a64.EncodingError):
        call()


# --- the assembler: labels, forward and backward ------------------------------------------------

items = st.lists(st.one_of(
    st.tuples(st.just("label")),
    st.tuples(st.sampled_from(["b", "b.ne", "b.eq", "cbz", "cbnz", "adr"]), st.integers(0, 7),
              gprs),
    st.tuples(st.just("nop"))), max_size=40)


@settings(max_examples=60)
@given(items)
def test_labels_resolve_like_keystone(program):
    asm = a64.Assembler(BASE)
    lines = []
    labels = [item for item in program if item[0] == "label"]
    count = len(labels)
    defined = 0
    for item in program:
        if item[0] == "label":
            asm.label(f"l{defined}")
            lines.append(f"l{defined}:")
            defined += 1
        elif item[0] == "nop":
            asm.emit(a64.nop())
            lines.append("nop")
        elif count:
            kind, which, reg = item
            target = f"l{which % count}"
            asm.branch(kind, target, reg)
            operand = f"x{reg}, " if kind in ("cbz", "cbnz", "adr") else ""
            lines.append(f"{kind} {operand}{target}")
    lines.append("nop")  # a label at the very end needs an instruction for keystone
    asm.emit(a64.nop())
    assert asm.assemble() == assembled("\n".join(lines))


def test_undefined_and_duplicate_labels_are_refused():
    asm = a64.Assembler(BASE)
    asm.branch("b", "nowhere")
    with pytest.raises(a64.EncodingError, match="undefined label 'nowhere'"):
        asm.assemble()
    asm.label("here")
    with pytest.raises(a64.EncodingError, match="defined twice"):
        asm.label("here")


def test_align_pads_with_nops():
    asm = a64.Assembler(BASE)
    asm.emit(a64.eret())
    asm.align(0x80)
    assert asm.here == BASE + 0x80
    assert asm.assemble() == ours(a64.eret(), *[a64.nop()] * 31)
    asm.align(0x80)  # already there: nothing added
    assert asm.here == BASE + 0x80
    with pytest.raises(a64.EncodingError, match="multiple of 4"):
        asm.align(6)
