"""Execute a notebook top to bottom in a real Jupyter kernel and save it with its outputs.

python scripts/run_notebook.py nbs/tutorials/01_quickstart.ipynb outputs/quickstart.ipynb"""

import sys, time
from pathlib import Path
import nbformat
from nbclient import NotebookClient


def main(src, dst, timeout=1800):
    nb = nbformat.read(src, as_version=4)
    t0 = time.time()
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name='python3', transport='ipc')  # a local socket file: nothing listens on TCP
    try:
        NotebookClient(
            nb, km=km, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': '.'}}
        ).execute()
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=False)
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)
    for c in nb.cells:  # echo the text outputs, so a terminal shows what the notebook shows
        for o in c.get('outputs', []):
            txt = o.get('text') or o.get('data', {}).get('text/plain')
            if txt and c.cell_type == 'code':
                print(txt.rstrip())
    print(f"\nExecuted {src} in {time.time() - t0:.0f}s; saved with its outputs to {dst}")


if __name__ == '__main__':
    main(*sys.argv[1:3])
