# Shared by scripts/run.sh and scripts/test.sh: a Python >= 3.11 with venv, and the project's .venv.
# Idempotent: installs only what is missing.

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

apt_install() {  # apt_install PACKAGE... (only those not installed yet)
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing Debian packages: ${missing[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=300 "${missing[@]}"
}

python_ok() {
  "$1" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

ensure_python() {
  PYTHON="${PYTHON:-python3}"
  if ! python_ok "$PYTHON"; then
    apt_install python3 python3-venv python3-pip
    PYTHON=/usr/bin/python3
    python_ok "$PYTHON" || { echo "schoolops needs Python >= 3.11 with venv" >&2; return 1; }
  fi
}

ensure_venv() {  # ensure_venv EXTRAS: .venv with the project installed (editable) with these extras
  local extras="$1" stamp
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  stamp="$(cat pyproject.toml | sha256sum | cut -c1-16)-$extras"
  if [ "$(cat .venv/.schoolops-installed 2>/dev/null)" != "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[$extras]"
    echo "$stamp" > .venv/.schoolops-installed
  fi
}
