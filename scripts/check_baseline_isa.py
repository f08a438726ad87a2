#!/usr/bin/env python3
"""Check the instruction sets in the built extension modules (objdump).

On x86-64:

* the modules loaded on every CPU -- ``_engine*.so``, ``_functions*.so``,
  ``_ufuncs*.so``, ``kernels*.so`` (the C API), ``_loops_baseline*.so`` and any
  other module that is not a per-ISA loop module -- must run on every x86-64
  CPU: no AVX of any kind -- no ymm / zmm / mask registers, no VEX- or
  EVEX-encoded ('v'-prefixed) instructions such as vmovdqu, vpcmpgtd,
  vzeroupper -- and no SSSE3 / SSE4 / BMI / popcnt / lzcnt either (the
  baseline is SSE2).
* ``_loops_avx2*.so`` must use ymm registers and no AVX-512 (zmm, k masks),
  and nothing the AVX2 level does not check for at run time (FMA, BMI1/2).
* ``_loops_avx512*.so`` must use zmm registers.

On aarch64, where one loop module is built for the architecture's baseline
(NEON is part of it): every loop function of ``_loops_baseline*.so`` (the
registry's ``<op>_<type>`` loops) must hold NEON vector instructions, that is,
the compiler vectorized it.

Usage: scripts/check_baseline_isa.py [PACKAGE_DIR]   (default: src/fastrelu)
Exit status 0 when every check passes; the offending instructions are listed.
"""
import re
import shutil
import subprocess
import sys
from pathlib import Path

INSN = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$")
FUNC = re.compile(r"^[0-9a-f]+ <(.+)>:$")
YMM = re.compile(r"%ymm\d+")
ZMM = re.compile(r"%zmm\d+")
KREG = re.compile(r"%k[0-7]\b")
XMM_HI = re.compile(r"%xmm(1[6-9]|2\d|3[01])\b")   # only reachable with EVEX
# 'v' mnemonics that are not VEX/EVEX encoded (protected-mode segment checks)
NOT_VEX = {"verr", "verw"}
# beyond SSE2: SSE3/SSSE3/SSE4.x/BMI/ABM instructions GCC could emit with -m flags
BEYOND_SSE2 = re.compile(
    r"^(pshufb|palignr|phaddw|phaddd|phsubw|phsubd|pabs[bwd]|psign[bwd]|pmulhrsw|pmaddubsw"
    r"|pblendvb|pblendw|blendv?p[sd]|pminsb|pmaxsb|pminsd|pmaxsd|pminuw|pmaxuw|pminud|pmaxud"
    r"|pcmpgtq|pcmpeqq|ptest|pmovsx\w+|pmovzx\w+|pextr[bdq]|pinsr[bdq]|packusdw|pmuldq|pmulld"
    r"|roundp[sd]|rounds[sd]|dpp[sd]|insertps|extractps|movntdqa|phminposuw"
    r"|pcmp[ei]str[im]|crc32\w*|popcnt\w*|lzcnt\w*|tzcnt\w*|andn|bextr|blsi|blsmsk|blsr"
    r"|bzhi|mulx|pdep|pext|rorx|sarx|shlx|shrx|movbe|lddqu|haddp[sd]|hsubp[sd]"
    r"|addsubp[sd]|movddup|movshdup|movsldup)$")


def disassemble(path):
    """Yield (function, mnemonic, operands) for every instruction of ``path``."""
    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(path)],
                          capture_output=True, text=True, check=True).stdout
    func = "?"
    for line in text.splitlines():
        m = FUNC.match(line)
        if m:
            func = m.group(1)
            continue
        m = INSN.match(line)
        if m:
            yield func, m.group(2), m.group(3)


def baseline_violations(path):
    bad = []
    count = 0
    for func, mnem, ops in disassemble(path):
        count += 1
        why = None
        if YMM.search(ops) or ZMM.search(ops) or KREG.search(ops) or XMM_HI.search(ops):
            why = "AVX register"
        elif mnem.startswith("v") and mnem not in NOT_VEX:
            why = "VEX/EVEX instruction"
        elif BEYOND_SSE2.match(mnem):
            why = "beyond SSE2"
        if why:
            bad.append(f"  {why}: {mnem} {ops}  in <{func}>")
    return count, bad


# not covered by the AVX2 level's run-time check (avx2 + f16c + popcnt): FMA, BMI1/2,
# LZCNT/TZCNT
NOT_IN_AVX2_LEVEL = re.compile(r"^(v?f(n?)m(add|sub)\w*|andn|bextr|blsi|blsmsk|blsr|bzhi|mulx"
                               r"|pdep|pext|rorx|sarx|shlx|shrx|lzcnt|tzcnt)$")


def usage(path):
    ymm = zmm = k = count = 0
    extra = []
    for func, mnem, ops in disassemble(path):
        count += 1
        ymm += bool(YMM.search(ops))
        zmm += bool(ZMM.search(ops))
        k += bool(KREG.search(ops))
        if NOT_IN_AVX2_LEVEL.match(mnem):
            extra.append(f"  not checked at run time: {mnem} {ops}  in <{func}>")
    return count, ymm, zmm, k, extra


#: The modules every CPU loads: the engine, the public functions, the ufuncs,
#: the Cython C API and the baseline loops.
BASELINE_MODULES = ("_engine*.so", "_functions*.so", "_ufuncs*.so", "kernels*.so",
                    "_loops_baseline*.so")


def one(pkg, pattern):
    found = sorted(pkg.glob(pattern))
    if len(found) != 1:
        raise SystemExit(f"expected exactly one {pattern} in {pkg}, found {found}")
    return found[0]


NEON = re.compile(r"\bv\d+\.\d*[bhsd]\b|\bq\d+\b")    # v0.4s, v1.16b, v2.s[1], q3
LOOP_FUNCTION = re.compile(r"^__pyx_f_8fastrelu_\d+_loops_baseline_(\w+)$")


def neon_failures(path):
    """The loop functions of an aarch64 loop module without NEON instructions."""
    vector = {}
    for func, _, ops in disassemble(path):
        m = LOOP_FUNCTION.match(func)
        if m:
            vector[m.group(1)] = vector.get(m.group(1), 0) + bool(NEON.search(ops))
    if not vector:
        return ["  no loop functions found (symbols stripped?)"]
    print(f"{path.name}: {len(vector)} loop functions, "
          f"{sum(1 for v in vector.values() if v)} with NEON instructions")
    return [f"  no NEON in the loop {name}" for name, v in sorted(vector.items()) if not v]


def elf_machine(path):
    """The ELF e_machine of ``path``: 0x3E x86-64, 0xB7 aarch64."""
    with open(path, "rb") as f:
        header = f.read(20)
    return int.from_bytes(header[18:20], "little")


def main(argv):
    if shutil.which("objdump") is None:
        print("objdump not found (install binutils)", file=sys.stderr)
        return 2
    pkg = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1] / "src/fastrelu"
    loops = one(pkg, "_loops_baseline*.so")
    if elf_machine(loops) == 0xB7:
        bad = neon_failures(loops)
        print("\n".join(bad) if bad else "aarch64 loops: every loop function uses NEON: OK")
        return 1 if bad else 0
    failures = 0
    baseline = [one(pkg, pattern) for pattern in BASELINE_MODULES]
    # every other module loaded on any CPU
    baseline += sorted(p for p in pkg.glob("*.so")
                       if p not in baseline and not p.name.startswith("_loops_"))
    for path in baseline:
        count, bad = baseline_violations(path)
        status = "OK" if not bad else f"FAIL ({len(bad)} instructions)"
        print(f"{path.name}: {count} instructions, no AVX / beyond-SSE2: {status}")
        for line in bad[:40]:
            print(line)
        failures += bool(bad)
    count, ymm, zmm, k, extra = usage(one(pkg, "_loops_avx2*.so"))
    ok = ymm > 0 and zmm == 0 and k == 0 and not extra
    print(f"_loops_avx2: {count} instructions, {ymm} with ymm, {zmm} with zmm, "
          f"{k} with mask registers, {len(extra)} FMA/BMI: "
          f"{'OK' if ok else 'FAIL (needs ymm; no AVX-512, FMA or BMI)'}")
    for line in extra[:20]:
        print(line)
    failures += not ok
    count, ymm, zmm, k, _ = usage(one(pkg, "_loops_avx512*.so"))
    ok = zmm > 0
    print(f"_loops_avx512: {count} instructions, {ymm} with ymm, {zmm} with zmm, "
          f"{k} with mask registers: {'OK' if ok else 'FAIL (needs zmm)'}")
    failures += not ok
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
