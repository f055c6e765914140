#!/usr/bin/env bash
# Set up, then run every test: notebook tests, library/notebook sync, Axolotl golden fixtures, command line
# and Jupyter-kernel end to end, and the browser tests (Debian's chromium, installed here when missing).
source "$(dirname "$0")/setup.sh"
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
python -m pytest "$@"
