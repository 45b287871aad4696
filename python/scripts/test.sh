#!/usr/bin/env bash
# The Python package's tests, from a fresh machine: a virtualenv (under
# ${SNAPGIT_PY_VENV:-${TMPDIR:-/tmp}/snapgit-python-venv}), `pip install ./python[test]`,
# then pytest against real `snapgit serve` processes run from $SNAPGIT_BIN (required;
# ../scripts/test.sh builds it). Arguments go to pytest. Ends with `# pass N` and
# `# fail N`, which ../scripts/test.sh adds to the suite's totals (a strict xfail, a
# server bug the tests keep, counts in neither).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${SNAPGIT_BIN:-}" ]; then
  echo "SNAPGIT_BIN must name the snapgit binary (cargo build -p snapgit-host --bin snapgit)" >&2
  exit 2
fi
[ -x "$SNAPGIT_BIN" ] || { echo "SNAPGIT_BIN=$SNAPGIT_BIN is not an executable file" >&2; exit 2; }
export SNAPGIT_BIN
command -v git >/dev/null || { echo "git is required: the tests read the store with it" >&2; exit 2; }

venv="${SNAPGIT_PY_VENV:-${TMPDIR:-/tmp}/snapgit-python-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || { echo "python3 -m venv failed: Python 3.9 or later with venv is required (Debian: apt-get install python3-venv)" >&2; exit 2; }
fi
export PYTHONDONTWRITEBYTECODE=1
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check ".[test]"

junit="$(mktemp)"
trap 'rm -f "$junit"' EXIT
status=0
"$venv/bin/python" -m pytest -p no:cacheprovider --junitxml="$junit" -o junit_family=xunit2 -rxX "$@" || status=$?

"$venv/bin/python" - "$junit" <<'PY'
import sys
import xml.etree.ElementTree as ET

try:
    root = ET.parse(sys.argv[1]).getroot()
except (ET.ParseError, FileNotFoundError):
    print("# pass 0\n# fail 1")
    sys.exit()
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
count = lambda name: sum(int(s.get(name, 0)) for s in suites)
failed = count("failures") + count("errors")
print(f"# pass {count('tests') - failed - count('skipped')}")
print(f"# fail {failed}")
PY
exit "$status"
