# shellcheck shell=bash
# Sourced by the scripts that need a program from Debian's packages: tests/browser/run.sh
# (chromium), tests/redis/run.sh (redis-server) and bench/instructions.sh (valgrind).
#
#   install_package PACKAGE CALLER
#
# Installs Debian's PACKAGE with apt-get, which needs root (CI runs as root); anyone else is told
# what to install and CALLER (the script's name, for the message) stops with status 1.
install_package() {
    local package=$1 caller=$2
    echo "Installing Debian's $package"
    if [ "$(id -u)" -ne 0 ]; then
        echo "$caller: $package is missing and installing it needs root (apt-get install $package)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
}
