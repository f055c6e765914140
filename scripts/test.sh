#!/usr/bin/env bash
# Set up, then run every test: notebook tests, library/notebook sync, command line end to end.
source "$(dirname "$0")/setup.sh"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
python -m pytest "$@"
