#!/usr/bin/env bash
# The main job: set up, then fine-tune the bundled tiny model on the bundled chat data (CPU, offline).
source "$(dirname "$0")/setup.sh"
ftkit train examples/quickstart.yml "$@"
