# Shared by demo.sh and test.sh: system packages and a virtual environment, idempotently.
# Sourced, not run.

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo "$@"
    else return 1
    fi
}

apt_install() {  # apt_install PACKAGE...: installs what is missing, or says how to
    command -v apt-get >/dev/null 2>&1 || { echo "error: no apt-get; install: $*" >&2; return 1; }
    if ! as_root true; then
        echo "error: need root (or passwordless sudo) to install: $*" >&2
        echo "       run: sudo apt-get install -y $*" >&2
        return 1
    fi
    echo "==> apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

find_mosquitto() {
    command -v mosquitto 2>/dev/null || { [ -x /usr/sbin/mosquitto ] && echo /usr/sbin/mosquitto; } || true
}

# make_venv PYTHON DIR EXTRAS: a venv with roomagent installed in editable mode.
make_venv() {
    local python=$1 dir=$2 extras=$3
    if ! "$python" -c "import ensurepip, venv" >/dev/null 2>&1; then
        local v
        v=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
        apt_install "python${v}-venv" || apt_install python3-venv
    fi
    # sensirion-gas-index-algorithm is built from source: it needs a C compiler and headers.
    command -v cc >/dev/null 2>&1 || apt_install gcc libc6-dev
    if ! "$python" -c 'import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' 2>/dev/null; then
        apt_install "python$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')-dev" || apt_install python3-dev
    fi
    if [ ! -x "$dir/bin/python" ]; then
        echo "==> creating $dir with $("$python" --version)"
        "$python" -m venv "$dir"
    fi
    "$dir/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    lgpio_build_tools "$dir/bin/python"
    # PYPI=1: lgpio's setup.py then compiles its C library in (as its own wheels do) instead of
    # linking a liblgpio the system may not have. Only lgpio reads it.
    PYPI=1 "$dir/bin/python" -m pip install -q --disable-pip-version-check -e ".${extras}"
}

# lgpio (the GPIO pin library, a dependency on ARM Linux) has wheels up to CPython 3.12; where
# pip finds none (Trixie's 3.13) it builds the source, which needs swig.
lgpio_build_tools() {
    local py=$1
    case "$(uname -m)" in aarch64|armv7l) ;; *) return 0 ;; esac
    command -v swig >/dev/null 2>&1 && return 0
    local probe
    probe=$(mktemp -d)
    if ! "$py" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
            -d "$probe" "lgpio>=0.2.2" >/dev/null 2>&1; then
        apt_install swig
    fi
    rm -rf "$probe"
}
