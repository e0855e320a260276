"""The shared libraries a dynamically linked program needs, read from its ELF headers.

A lesson image built ``FROM scratch`` holds a Debian program (jq, curl) only with every library
it loads: the ``DT_NEEDED`` entries of the program, then of each of those, until nothing new is
named. The headers are read, never executed (``ldd`` runs the program's loader), so the list is
the same on any machine with the same packages. Only 64-bit little-endian ELF is read, which is
what the images' ``/lib/x86_64-linux-gnu`` holds; anything else is refused rather than guessed.

A leaf: imports nothing of the project.
"""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NULL, DT_NEEDED, DT_STRTAB = 0, 1, 5


class ElfError(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class DynamicInfo:
    # the program's loader (PT_INTERP), e.g. /lib64/ld-linux-x86-64.so.2; "" for a library
    interpreter: str
    # DT_NEEDED sonames in file order; empty for a static program
    needed: tuple[str, ...]


def read_dynamic(data: bytes) -> DynamicInfo:
    if data[:4] != b"\x7fELF":
        raise ElfError("not an ELF file")
    if data[4] != 2 or data[5] != 1:
        raise ElfError("only 64-bit little-endian ELF is read")
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads: list[tuple[int, int, int]] = []
    dynamic: tuple[int, int] | None = None
    interpreter = ""
    for index in range(phnum):
        p_type, _flags, offset, vaddr, _paddr, filesz, _memsz, _align = struct.unpack_from(
            "<IIQQQQQQ", data, phoff + index * phentsize
        )
        if p_type == PT_LOAD:
            loads.append((vaddr, offset, filesz))
        elif p_type == PT_DYNAMIC:
            dynamic = (offset, filesz)
        elif p_type == PT_INTERP:
            interpreter = data[offset : offset + filesz].split(b"\0", 1)[0].decode()
    if dynamic is None:
        return DynamicInfo(interpreter, ())

    needed_offsets: list[int] = []
    strtab_vaddr: int | None = None
    start, size = dynamic
    for entry in range(start, start + size, 16):
        tag, value = struct.unpack_from("<qQ", data, entry)
        if tag == DT_NULL:
            break
        if tag == DT_NEEDED:
            needed_offsets.append(value)
        elif tag == DT_STRTAB:
            strtab_vaddr = value
    if not needed_offsets:
        return DynamicInfo(interpreter, ())
    if strtab_vaddr is None:
        raise ElfError("DT_NEEDED entries without a string table")
    strtab = _file_offset(loads, strtab_vaddr)
    names = []
    for value in needed_offsets:
        begin = strtab + value
        names.append(data[begin : data.index(b"\0", begin)].decode())
    return DynamicInfo(interpreter, tuple(names))


def _file_offset(loads: list[tuple[int, int, int]], vaddr: int) -> int:
    for segment_vaddr, offset, filesz in loads:
        if segment_vaddr <= vaddr < segment_vaddr + filesz:
            return offset + vaddr - segment_vaddr
    raise ElfError(f"address {vaddr:#x} is in no loaded segment")


def library_closure(program: Path, lib_dirs: tuple[str, ...]) -> dict[str, Path]:
    """Every library ``program`` loads, by soname, found in ``lib_dirs`` (first match wins, as
    the loader's default path does). The loader itself is left out: it is placed at the path the
    program names, not among the libraries. A library found nowhere is an ``ElfError``."""
    top = read_dynamic(program.read_bytes())
    loader = Path(top.interpreter).name if top.interpreter else ""
    found: dict[str, Path] = {}
    pending = [(name, program) for name in top.needed]
    while pending:
        name, wanted_by = pending.pop(0)
        if name in found or name == loader:
            continue
        path = next((Path(folder) / name for folder in lib_dirs if (Path(folder) / name).is_file()), None)
        if path is None:
            raise ElfError(f"{name} (needed by {wanted_by}) is in none of {', '.join(lib_dirs)}")
        found[name] = path
        pending.extend((child, path) for child in read_dynamic(path.read_bytes()).needed)
    return found
