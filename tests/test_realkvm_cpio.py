"""The initramfs writer, read back by an independent newc reader (the kernel's format,
Documentation/driver-api/early-userspace/buffer-format.rst)."""

import io
import shutil
import stat
import subprocess

import pytest

from realkvm.cpio import NewcWriter, header


def read_newc(blob: bytes) -> list[dict]:
    """Every entry of one or more concatenated archives, trailers included."""
    entries, pos = [], 0
    while pos < len(blob):
        if blob[pos : pos + 4] == b"\0\0\0\0":  # padding between archives
            pos += 4
            continue
        assert blob[pos : pos + 6] == b"070701", f"bad magic at {pos}"
        fields = [int(blob[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        mode, nlink, size, namesize = fields[1], fields[4], fields[6], fields[11]
        name_start = pos + 110
        name = blob[name_start : name_start + namesize]
        assert name.endswith(b"\0")
        data_start = name_start + namesize
        data_start += -data_start % 4
        data = blob[data_start : data_start + size]
        entries.append({"name": name[:-1].decode(), "mode": mode, "nlink": nlink, "data": data,
                        "uid": fields[2], "mtime": fields[5], "rdev": (fields[9], fields[10])})
        pos = data_start + size
        pos += -pos % 4
    return entries


def write(build) -> bytes:
    out = io.BytesIO()
    writer = NewcWriter(out)
    build(writer)
    writer.close()
    return out.getvalue()


def test_header_is_110_ascii_bytes_in_kernel_field_order():
    # regular file 0644 (0o100644 = 0x81A4), ino 1, nlink 1, 5 bytes, name "a/b" + NUL
    assert header(1, 0o100644, 1, 5, 4, (0, 0)) == (
        b"070701" + b"00000001" + b"000081A4" + b"00000000" + b"00000000" + b"00000001"
        + b"00000000" + b"00000005" + b"00000000" * 4 + b"00000004" + b"00000000"
    )


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 511, 512, 513])
def test_file_content_survives_every_padding(size):
    data = bytes(range(256)) * 3
    entries = read_newc(write(lambda w: w.file("etc/f", data[:size], 0o640)))
    assert [e["name"] for e in entries] == ["etc/f", "TRAILER!!!"]
    assert entries[0]["data"] == data[:size]
    assert entries[0]["mode"] == stat.S_IFREG | 0o640


def test_entry_kinds_modes_and_device_numbers():
    def build(w):
        w.directory("/dev")
        w.char_device("/dev/console", 5, 1)
        w.symlink("lib", "usr/lib")
        w.directory("tmp", 0o1777)

    entries = read_newc(write(build))
    assert [(e["name"], e["mode"], e["rdev"], e["data"]) for e in entries] == [
        ("dev", stat.S_IFDIR | 0o755, (0, 0), b""),
        ("dev/console", stat.S_IFCHR | 0o600, (5, 1), b""),
        ("lib", stat.S_IFLNK | 0o777, (0, 0), b"usr/lib"),
        ("tmp", stat.S_IFDIR | 0o1777, (0, 0), b""),
        ("TRAILER!!!", 0, (0, 0), b""),
    ]
    assert all(e["uid"] == 0 and e["mtime"] == 0 for e in entries)


def test_archive_ends_on_a_512_byte_block():
    assert len(write(lambda w: w.file("x", b"abc"))) % 512 == 0


def test_tree_lists_parents_before_children_and_keeps_symlinks(tmp_path):
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "usr/bin/tool").write_bytes(b"#!x\n")
    (tmp_path / "usr/bin/tool").chmod(0o755)
    (tmp_path / "lib").symlink_to("usr/lib")
    entries = read_newc(write(lambda w: w.tree(tmp_path, "/")))
    assert [(e["name"], stat.S_IFMT(e["mode"])) for e in entries] == [
        ("lib", stat.S_IFLNK),
        ("usr", stat.S_IFDIR),
        ("usr/bin", stat.S_IFDIR),
        ("usr/bin/tool", stat.S_IFREG),
        ("TRAILER!!!", 0),
    ]
    assert entries[3]["data"] == b"#!x\n" and entries[3]["mode"] & 0o777 == 0o755


def test_concatenated_archives_read_one_after_the_other():
    blob = write(lambda w: w.file("a", b"1")) + write(lambda w: w.file("a/b", b"22"))
    assert [(e["name"], e["data"]) for e in read_newc(blob)] == [
        ("a", b"1"), ("TRAILER!!!", b""), ("a/b", b"22"), ("TRAILER!!!", b""),
    ]


@pytest.mark.allowed_skip  # a cross-check against an optional host tool
@pytest.mark.skipif(shutil.which("cpio") is None, reason="GNU cpio is not installed")
def test_gnu_cpio_lists_the_same_names(tmp_path):
    blob = write(lambda w: (w.directory("d"), w.file("d/f", b"x"), w.symlink("l", "d")))
    listed = subprocess.run(["cpio", "-it"], input=blob, capture_output=True, check=True)
    assert listed.stdout.decode().split() == ["d", "d/f", "l"]
