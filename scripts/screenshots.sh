#!/usr/bin/env bash
# Refresh the documentation's screenshots (docs/images/*.png) from the browser tests, which otherwise save
# them to a temporary folder. Review the images, then commit them.
source "$(dirname "$0")/setup.sh"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 FTKIT_SCREENSHOTS="$PWD/docs/images"
python -m pytest -q tests/test_browser.py tests/test_docs.py -k "browser" "$@"
