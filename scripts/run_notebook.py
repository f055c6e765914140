"""Execute a notebook top to bottom in a real Jupyter kernel, showing its outputs as they come, and save it with them.

python scripts/run_notebook.py nbs/tutorials/01_quickstart.ipynb outputs/quickstart.ipynb

Each code cell that shows something is announced before its first output (`[5/8] %%finetune --name ft  (0:41)`:
its number, its first line, the time since the notebook started), then its printed output and the plain-text
form of what it displays stream to the terminal as the kernel sends them; a cell without output shows nothing. A display that updates in place (the live view of a `%%finetune` cell: step, ETA,
loss) is redrawn on one line on a terminal, and printed as a new line (at most every few seconds) anywhere
else. Colour codes (in tracebacks, say) are dropped unless stdout is a terminal."""

import re, sys, time
from pathlib import Path
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ANSI = re.compile(r'\x1b\[[0-9;?]*[A-Za-z]')


def _text(content: dict) -> str:
    "The text a terminal shows for an output message: stream text, a traceback, or a display's text/plain."
    if 'text' in content:
        return content['text']
    if 'traceback' in content:
        return '\n'.join(content['traceback']) + '\n'
    plain = content.get('data', {}).get('text/plain', '')
    return plain + '\n' if plain and not plain.endswith('\n') else plain


class StreamingClient(NotebookClient):
    "A `NotebookClient` that echoes each cell's outputs to `out` while the cell runs."

    def __init__(self, nb, out=sys.stdout, every: float = 5.0, **kw):
        super().__init__(nb, **kw)
        self.out, self.every, self.t0 = out, every, time.time()
        self.tty = out.isatty()
        self.live, self.live_at = None, 0.0  # the last in-place line shown, and when (for plain output)
        self.n_code = sum(c.cell_type == 'code' for c in nb.cells)
        self.header = None  # the current cell's announcement, until its first output prints it
        self.on_cell_start = self._announce

    def _write(self, text: str):
        self.out.write(text if self.tty else ANSI.sub('', text))
        self.out.flush()

    def _end_live(self):
        if self.live is not None and self.tty:
            self._write('\n')
        self.live = None

    def _announce(self, cell, cell_index):
        i = sum(c.cell_type == 'code' for c in self.nb.cells[: cell_index + 1])
        lines = [l for l in cell.source.splitlines() if l.strip() and not l.startswith('#|')]
        first = lines[0] if lines else ''
        elapsed = int(time.time() - self.t0)
        self.header = f"\n[{i}/{self.n_code}] {first[:80]}  ({elapsed // 60}:{elapsed % 60:02d})\n"

    def _print(self, text: str):
        "Print a cell's output, after its announcement when this is its first."
        self._end_live()
        if self.header:
            self._write(self.header)
            self.header = None
        self._write(text)

    def process_message(self, msg, cell, cell_index):
        out = super().process_message(msg, cell, cell_index)
        kind, content = msg['msg_type'], msg['content']
        if kind == 'update_display_data':
            self._show_live(_text(content).rstrip('\n'))
        elif kind in ('stream', 'display_data', 'execute_result', 'error'):
            text = _text(content)
            if text:
                self._print(text)
        return out

    def _show_live(self, text: str):
        "An update of a display: redraw its first line in place on a terminal; elsewhere print it, now and then."
        line = text.splitlines()[0] if text else ''
        if self.header:  # an update before any output (not expected): announce the cell first
            self._print('')
        if self.tty:
            pad = max(0, len(self.live or '') - len(line))
            self._write('\r' + line + ' ' * pad)
            self.live = line
        elif time.time() - self.live_at >= self.every or 'ETA' not in line:  # now and then, and the final state
            self._write(line + '\n')
            self.live, self.live_at = line, time.time()


def main(src, dst, timeout=1800):
    nb = nbformat.read(src, as_version=4)
    print(f"Running {src} in a Jupyter kernel; the executed notebook, with its outputs, goes to {dst}", flush=True)
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name='python3', transport='ipc')  # a local socket file: nothing listens on TCP
    client = StreamingClient(
        nb, km=km, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': '.'}}
    )
    try:
        client.execute()
    except CellExecutionError:
        print(f"\nA cell of {src} failed (its error is above); the notebook, as far as it ran, is in {dst}", file=sys.stderr)
        return 1
    finally:
        client._end_live()
        if km.has_kernel:
            km.shutdown_kernel(now=False)
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, dst)  # saved also when a cell failed: its error is in the file
    return 0


if __name__ == '__main__':
    sys.exit(main(*sys.argv[1:3]))
