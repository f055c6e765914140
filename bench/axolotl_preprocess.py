"""The peer of bench/preprocess.py: prepare a dataset the way `axolotl preprocess` does.

Run with the Python of a virtual environment that has axolotl installed (never ftkit's own):
    /path/to/axolotl-venv/bin/python bench/axolotl_preprocess.py cfg.yml
Prints one JSON line: rows in and out, tokens, seconds, peak memory."""

import json, resource, sys, time
import yaml


def _hwm_mb():
    "Peak resident memory of this process (VmHWM): unlike ru_maxrss it does not carry over the parent's peak across fork+exec."
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) / 1024
    return 0.0


def main(cfg_path):
    raw = yaml.safe_load(open(cfg_path))
    from axolotl.cli.config import load_cfg
    from axolotl.common.datasets import load_datasets
    from axolotl.utils.dict import DictDefault

    cfg = load_cfg(DictDefault(raw))
    t0 = time.time()
    meta = load_datasets(cfg=cfg)
    secs = time.time() - t0
    ds = meta.train_dataset
    tokens = sum(len(x) for x in ds['input_ids'])  # counted after the clock stops
    from datasets import load_dataset

    rows_in = len(load_dataset('json', data_files=raw['datasets'][0]['path'], split='train'))
    me = _hwm_mb()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        json.dumps(
            dict(
                rows_in=rows_in,
                rows_out=len(ds),
                tokens=tokens,
                seconds=round(secs, 2),
                peak_mb=[round(me), round(kids)],
            )
        )
    )


if __name__ == '__main__':
    main(sys.argv[1])
