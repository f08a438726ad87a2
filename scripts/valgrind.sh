#!/usr/bin/env bash
# Run fastrelu under valgrind memcheck (uses the in-place build in src/).
#
#   scripts/valgrind.sh              # scripts/valgrind_smoke.py: every function, dtype,
#                                    # layout, thread/streaming path, error path
#   scripts/valgrind.sh --quick      # the smoke workload on fewer sizes (CI's bound)
#   scripts/valgrind.sh --pytest     # also tests/test_isa_paths.py -k 'float32 or int8'
#   scripts/valgrind.sh --strict     # fail on any memcheck error, not only fastrelu's
#
# PYTHONMALLOC=malloc lets memcheck see every Python allocation. Leaks are not
# checked (CPython does not free everything at exit). CPython and NumPy have
# a little known noise under memcheck, so an error fails the run only if its
# stack has a frame in fastrelu's extension modules (or, with --strict, always):
# invalid reads/writes, uses of uninitialised values, bad frees, overlapping
# memcpy -- every memcheck error kind. All errors are written as XML and
# summarised. Note: valgrind does not emulate AVX-512, so the CPU looks like
# an AVX2 one and the baseline and AVX2 kernels are the ones checked.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
STRICT=0
PYTEST=0
while [ $# -gt 0 ]; do
    case "$1" in
        --strict) STRICT=1 ;;
        --pytest) PYTEST=1 ;;
        --quick) export FASTRELU_VALGRIND_QUICK=1 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
# the interpreter itself, not a wrapper script (pyenv shims, venv launchers):
# valgrind does not follow children
PYTHON=$("$PYTHON" -c 'import sys; print(sys.executable)')
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 2; }
ls "$ROOT"/src/fastrelu/_engine*.so >/dev/null 2>&1 \
    || { echo "build first: python3 setup.py build_ext --inplace" >&2; exit 2; }

OUT=$(mktemp -d "${TMPDIR:-/tmp}/fastrelu-valgrind.XXXXXX")
echo "== valgrind output in $OUT"
cd "$ROOT"

run() {   # name, python args...
    local name=$1; shift
    local t0; t0=$(date +%s)
    echo "== $name: valgrind $PYTHON $*"
    set +e
    PYTHONMALLOC=malloc PYTHONPATH="$ROOT/src" \
        valgrind --tool=memcheck --leak-check=no --errors-for-leak-kinds=none \
                 --track-origins=yes --num-callers=30 --error-limit=no \
                 --xml=yes --xml-file="$OUT/$name.%p.xml" --log-file="$OUT/$name.%p.log" \
                 "$PYTHON" "$@" > "$OUT/$name.out" 2>&1
    local status=$?
    set -e
    tail -3 "$OUT/$name.out"
    echo "   $name: exit status $status in $(( $(date +%s) - t0 )) s"
    [ "$status" = 0 ] || { echo "FAIL: $name exited with status $status" >&2; cat "$OUT/$name.out" | tail -40 >&2; exit 1; }
}

run smoke scripts/valgrind_smoke.py
if [ "$PYTEST" = 1 ]; then
    run pytest -m pytest -q -p no:cacheprovider -x tests/test_isa_paths.py -k "float32 or int8"
fi

"$PYTHON" - "$OUT" "$STRICT" <<'EOF'
import collections, glob, sys
import xml.etree.ElementTree as ET

out, strict = sys.argv[1], sys.argv[2] == "1"
ours, other = [], collections.Counter()
def documents(path):
    """The XML documents in ``path``: a child forked by the interpreter (before it
    execs another program) appends its own document to its parent's file."""
    text = open(path, encoding="utf-8", errors="replace").read()
    for part in text.split("<?xml")[1:]:
        part = "<?xml" + part
        end = part.rfind("</valgrindoutput>")
        if end < 0:
            continue        # cut short by exec(): holds no complete error record
        try:
            yield ET.fromstring(part[:end + len("</valgrindoutput>")])
        except ET.ParseError as e:
            sys.exit(f"cannot parse {path}: {e}")

for path in sorted(glob.glob(f"{out}/*.xml")):
  for root in documents(path):
    for err in root.iter("error"):
        kind = err.findtext("kind")
        if kind.startswith("Leak_"):
            continue        # leaks are not checked (CPython does not free everything)
        frames = [(f.findtext("fn") or "?", f.findtext("obj") or "?",
                   f"{f.findtext('file') or ''}:{f.findtext('line') or ''}")
                  for f in err.find("stack").iter("frame")]
        # code that runs inside an import (an optional package such as
        # ml_dtypes, imported by fastrelu at import) is that module's, not
        # fastrelu's: only the frames inside the innermost import count
        imported = next((i for i, (fn, _, _) in enumerate(frames)
                         if fn in ("__Pyx_Import", "PyImport_ImportModuleLevelObject")), None)
        mine = any("/fastrelu/" in obj or "fastrelu" in fn or fn.startswith("fr_")
                   for fn, obj, _ in frames[:imported])
        what = (err.findtext("what") or err.findtext("xwhat/text") or "").strip()
        if mine:
            ours.append((kind, what, frames))
        else:
            other[(kind, frames[0][0] if frames else "?")] += 1
print(f"memcheck errors with a fastrelu frame: {len(ours)}; elsewhere: {sum(other.values())}")
for (kind, fn), n in other.most_common(10):
    print(f"   (not fastrelu) {n} x {kind} in {fn}")
for kind, what, frames in ours[:10]:
    print(f"FASTRELU {kind}: {what}")
    for fn, obj, loc in frames[:12]:
        print(f"     {fn}  {loc}  ({obj.rsplit('/', 1)[-1]})")
if ours or (strict and other):
    sys.exit(1)
print("OK")
EOF
