"""`%%finetune` in a real Jupyter kernel (jupyter_client): load time, training with the result bound,
`$var` and line overrides, the live view's outputs, an interrupt from the kernel's stop button, and the
short message for a YAML error."""

import json, os, subprocess, time
from pathlib import Path
import pytest
from jupyter_client.manager import start_new_kernel


@pytest.fixture(scope='module')
def kernel(tmp_path_factory):
    wd = tmp_path_factory.mktemp('kernel')
    km, kc = start_new_kernel(kernel_name='python3', cwd=str(wd))
    yield km, kc, wd
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def run(kc, code, timeout=300):
    "Execute `code`; return (stdout, stderr, [display bundles], error or None)."
    msg_id = kc.execute(code)
    out, err, disp, exc = [], [], [], None
    deadline = time.time() + timeout
    while True:
        msg = kc.get_iopub_msg(timeout=max(1, deadline - time.time()))
        if msg['parent_header'].get('msg_id') != msg_id:
            continue
        t, c = msg['msg_type'], msg['content']
        if t == 'stream':
            (out if c['name'] == 'stdout' else err).append(c['text'])
        elif t in ('display_data', 'update_display_data', 'execute_result'):
            disp.append(c['data'])
        elif t == 'error':
            exc = c['ename'] + ': ' + c['evalue']
        elif t == 'status' and c['execution_state'] == 'idle':
            break
    return ''.join(out), ''.join(err), disp, exc


CELL = """%%finetune --name {name} {line}
base_model: ftkit:tiny-llama
adapter: lora
lora_target_linear: true
learning_rate: $lr
datasets:
  - path: ftkit:samples/chat
    type: chat_template
sequence_len: 256
micro_batch_size: 8
logging_steps: 1
save_strategy: 'no'
output_dir: {out}
"""


def test_load_ext_is_cheap(kernel):
    km, kc, wd = kernel
    out, err, _, exc = run(
        kc, "import time, sys\nt = time.time()\n%load_ext ftkit\nprint(time.time() - t, 'torch' in sys.modules)"
    )
    secs, torch_loaded = out.split()
    assert exc is None and float(secs) < 1.0 and torch_loaded == 'False', (out, err)


def test_finetune_cell_trains_and_binds_the_result(kernel):
    km, kc, wd = kernel
    run(kc, "%load_ext ftkit\nlr = 4e-3")
    out, err, disp, exc = run(kc, CELL.format(name='r', line='max_steps=10', out='runs/a'))
    assert exc is None, (exc, err)
    assert (
        'Training ftkit:tiny-llama: ' in out and ' parameters (' in out and 'Data:' in out and 'step    1/10' not in out
    )  # the start summary shown (trainable parameters once); steps left to the view
    out, err, _, exc = run(
        kc, "print(type(r).__name__, len(r.losses), r.cfg.learning_rate, r.cfg.max_steps, r.losses[-1] < r.losses[0])"
    )
    assert out.split() == ['TrainResult', '10', '0.004', '10', 'True'], (out, err)
    html = [d['text/html'] for d in disp if 'ftkit-live' in d.get('text/html', '')]
    assert len(html) >= 2 and 'done:' in html[-1] and '<svg' in html[-1]
    assert 'step 10/10' in [d['text/plain'] for d in disp if 'ftkit-live' in d.get('text/html', '')][-1]


def test_yaml_error_is_one_short_message(kernel):
    km, kc, wd = kernel
    run(kc, "%load_ext ftkit")
    out, err, disp, exc = run(
        kc, "%%finetune\nbase_model: x\nlearning_rate: 1e-4\ndatasets:\n  - path: d\n  type: [alpaca\n"
    )
    assert (
        exc is None and 'Traceback' not in err and err.startswith('ftkit: 1 problem in the cell:') and 'line 5' in err
    ), err


def _children(pid):
    out = subprocess.run(['ps', '-o', 'pid=,stat=', '--ppid', str(pid)], capture_output=True, text=True).stdout.split(
        '\n'
    )
    return [l.split()[0] for l in out if l.strip() and not l.split()[1].startswith('Z')]


def test_interrupt_leaves_a_resumable_checkpoint(kernel):
    km, kc, wd = kernel
    run(kc, "%load_ext ftkit\nlr = 4e-3\nimport os; print(os.getpid())")
    kpid = int(run(kc, "print(os.getpid())")[0])
    msg_id = kc.execute(
        CELL.format(name='r2', line='max_steps=100000 save_strategy=steps save_steps=100000', out='runs/b')
    )
    metrics = wd / 'runs' / 'b' / 'metrics.jsonl'
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        time.sleep(0.2)
    km.interrupt_kernel()
    t0 = time.time()
    reply = kc.get_shell_msg(timeout=60)
    while reply['parent_header'].get('msg_id') != msg_id:
        reply = kc.get_shell_msg(timeout=60)
    assert time.time() - t0 < 30 and reply['content']['status'] == 'ok', reply['content']
    cps = sorted((wd / 'runs' / 'b').glob('checkpoint-*'))
    assert cps, "no checkpoint after the interrupt"
    step = int(cps[-1].name.split('-')[1])
    out, err, disp, exc = run(kc, "print(r2.interrupted, 1 + 1)")
    assert out.split() == ['SIGINT', '2'], (out, err, exc)
    assert _children(kpid) == []
    out, err, disp, exc = run(
        kc,
        CELL.format(
            name='r3', line=f'--resume max_steps={step + 2} save_strategy=steps save_steps=100000', out='runs/b'
        ),
    )
    assert exc is None, (exc, err)
    steps = [json.loads(l)['step'] for l in metrics.read_text().splitlines() if '"loss"' in l]
    assert steps == list(range(1, step + 3)), steps
