#!/usr/bin/env bash
# Makes sure the build and wgpu will work: a Rust toolchain must be there (we say how to get one), and if
# Vulkan has no driver and apt is available, installs Mesa's software Vulkan driver (lavapipe).
# Sourced by tutorial.sh and test.sh.
set -euo pipefail
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found. Install Rust (https://rustup.rs: curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh)," >&2
    echo "       or on Debian/Ubuntu 'apt-get install cargo' if it is 1.87 or newer, then run this again." >&2
    exit 1
fi

have_vulkan_device() {
    # Any ICD manifest means a Vulkan driver is installed (GPU or lavapipe); wgpu then enumerates it.
    # (Not `ls dir1/*.json dir2/*.json`: that fails when either folder has none, which made this check
    # false on machines with a driver and re-ran the installation every time.)
    compgen -G '/usr/share/vulkan/icd.d/*.json' >/dev/null || compgen -G '/etc/vulkan/icd.d/*.json' >/dev/null || return 1
    ldconfig -p 2>/dev/null | grep -q libvulkan.so.1
}

if ! have_vulkan_device; then
    if command -v apt-get >/dev/null 2>&1; then
        echo "no Vulkan driver found: installing the software adapter (mesa-vulkan-drivers)" >&2
        SUDO=""
        if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
        apt_install() { DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
        codename="$( (. /etc/os-release && echo "${VERSION_CODENAME:-}") 2>/dev/null || true)"
        if [ "$codename" = bookworm ] && [ "${WGREC_NO_BACKPORTS:-}" != 1 ]; then
            # Debian 12's Mesa 22.3 lavapipe crashes now and then in its queue thread and ends shader loops
            # after 65,535 iterations; bookworm-backports has Mesa 25 (README, Known issues).
            echo "Debian 12: taking mesa-vulkan-drivers from bookworm-backports (Mesa 25); WGREC_NO_BACKPORTS=1 to skip" >&2
            echo "deb http://deb.debian.org/debian bookworm-backports main" \
                | $SUDO tee /etc/apt/sources.list.d/wgrec-bookworm-backports.list >/dev/null
            $SUDO apt-get update -qq
            apt_install -t bookworm-backports libvulkan1 mesa-vulkan-drivers || {
                echo "bookworm-backports failed; installing Debian 12's Mesa instead" >&2
                apt_install libvulkan1 mesa-vulkan-drivers
            }
        else
            $SUDO apt-get update -qq
            apt_install libvulkan1 mesa-vulkan-drivers
        fi
    else
        echo "warning: no Vulkan driver found and no apt-get; install your GPU's Vulkan driver or Mesa's lavapipe" >&2
    fi
fi
