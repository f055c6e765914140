"""The `ftkit` command end to end: every command line the README documents, run as written against the shipped
example config; the progress bar on a terminal (a pseudo-terminal) and plain lines in a log file."""

import fcntl, json, os, pty, re, select, shlex, shutil, struct, subprocess, sys, termios, time
from pathlib import Path
import yaml

ROOT = Path(__file__).resolve().parents[1]
STEP = re.compile(r'\s*step\s+\d+/\d+')  # ftkit.metrics.STEP_LINE
ENV = dict(os.environ, HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1')


def readme_cli_lines() -> list:
    "The command lines of the README's 'On the command line' section, comments dropped."
    text = (ROOT / 'README.md').read_text()
    section = text.split('## On the command line', 1)[1]
    block = section.split('```bash\n', 1)[1].split('```', 1)[0]
    return [shlex.split(l, comments=True) for l in block.splitlines() if l.strip()]


def quiz_answer(question: str) -> str:
    from ftkit.metrics import quiz_pairs

    return dict(quiz_pairs('ftkit:samples/quiz'))[question]


def run(args, cwd, venv_bin, **kw):
    return subprocess.run(
        [str(venv_bin / args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True, env=ENV, **kw
    )


def test_readme_names_what_exists():
    "The README's command lines name files that exist, and it says how to activate the environment."
    lines = readme_cli_lines()
    verbs = [l[1] for l in lines]
    assert all(l[0] == 'ftkit' for l in lines) and {'demo', 'train', 'inference', 'merge-lora'} <= set(verbs)
    configs = {l[2] for l in lines if l[1] in ('validate', 'preprocess', 'train', 'inference', 'merge-lora')}
    assert configs == {'examples/quickstart.yml'} and (ROOT / 'examples/quickstart.yml').exists()
    readme = (ROOT / 'README.md').read_text()
    assert 'source .venv/bin/activate' in readme and 'pip install -e .' in readme
    assert 'cfg.yml' not in readme
    for m in re.finditer(r'pip install ftkit\b', readme):  # only ever as the line for when ftkit is published
        assert 'published' in readme[max(0, m.start() - 200) : m.end() + 50], readme[m.start() - 200 : m.end()]


def test_demo_is_the_example_config():
    "`ftkit demo` and examples/quickstart.yml are the same fine-tune (the README says so)."
    from ftkit.cli import DEMO

    example = yaml.safe_load((ROOT / 'examples/quickstart.yml').read_text())
    for k, v in DEMO.items():
        if k == 'datasets':
            assert [{k2: d[k2] for k2 in ('path', 'type')} for d in example['datasets']] == v
        else:
            assert example[k] == v or float(example[k]) == v, (k, example[k], v)


def test_readme_command_lines(tmp_path, venv_bin):
    "Each documented line, in order, in a folder holding only the example config: each does what it says."
    shutil.copytree(ROOT / 'examples', tmp_path / 'examples')
    out = tmp_path / 'outputs' / 'quickstart'
    for args in readme_cli_lines():
        r = run(args, tmp_path, venv_bin)
        assert r.returncode == 0, (args, r.stdout[-2000:], r.stderr[-3000:])
        assert '\x1b' not in r.stdout + r.stderr, args  # not a terminal: no colour or cursor codes
        verb = args[1]
        if verb == 'demo':
            last = r.stdout.strip().splitlines()[-1]
            k, n = map(int, re.match(r'learned: (\d+)/(\d+)', last).groups())
            assert k >= 0.8 * n and 'before fine-tuning' in r.stdout, r.stdout[-3000:]
        elif verb == 'validate':
            assert 'base_model: ftkit:tiny-llama' in r.stdout
        elif verb == 'train':
            steps = [l for l in r.stdout.splitlines() if STEP.match(l)]
            assert steps and all(' ETA ' in l for l in steps if 'eval_loss' not in l), r.stdout
            losses = [m['loss'] for m in map(json.loads, (out / 'metrics.jsonl').read_text().splitlines()) if 'loss' in m]
            assert losses[-1] < 0.5 * losses[0], losses
            assert (out / 'adapter_model.safetensors').exists() and (out / 'config.yaml').exists()
        elif verb == 'inference':
            assert r.stdout.strip() == quiz_answer(args[args.index('--prompt') + 1]), r.stdout
        elif verb == 'merge-lora':
            assert (out / 'merged' / 'config.json').exists()
        elif verb == 'fetch':
            assert list((tmp_path / 'deepspeed_configs').glob('*.json'))


def _in_pty(args, cwd, timeout=600) -> str:
    "Run `args` with stdout and stderr on a pseudo-terminal; return everything it wrote."
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', 30, 120, 0, 0))  # 30 x 120, as a terminal window
    p = subprocess.Popen(args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=ENV)
    os.close(slave)
    chunks, end = [], time.time() + timeout
    while time.time() < end:
        if select.select([master], [], [], 1.0)[0]:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif p.poll() is not None:
            break
    p.wait(timeout=60)
    os.close(master)
    assert p.returncode == 0, b''.join(chunks)[-3000:]
    return b''.join(chunks).decode(errors='replace')


def test_progress_bar_on_a_terminal_plain_lines_in_a_log(tmp_path, venv_bin):
    "On a terminal: one bar redrawn in place with steps/total, ETA, loss, tokens/s. In a file: plain lines, no codes."
    shutil.copytree(ROOT / 'examples', tmp_path / 'examples')
    cfg = ['examples/quickstart.yml', '--num_epochs=20', f'--dataset_prepared_path={tmp_path}/prep']
    tty = _in_pty([str(venv_bin / 'ftkit'), 'train', *cfg, '--output_dir=tty'], tmp_path)
    assert '\r' in tty and re.search(r'\d+/20 \[\d+:\d+<\d+:\d+', tty), tty[-3000:]
    assert re.search(r'20/20 \[', tty) and re.search(r'loss \d\.\d{4}, [\d,]+ tok/s', tty), tty[-3000:]
    assert not [l for l in re.split(r'[\r\n]', tty) if STEP.match(l)], tty  # the bar instead of per-step lines

    with open(tmp_path / 'train.log', 'w') as f:
        p = subprocess.run(
            [str(venv_bin / 'ftkit'), 'train', *cfg, '--output_dir=file'], cwd=tmp_path, stdout=f, stderr=f, env=ENV
        )
    log = (tmp_path / 'train.log').read_text()
    assert p.returncode == 0, log[-3000:]
    assert '\x1b' not in log and '\r' not in log, log[-3000:]
    steps = [l for l in log.splitlines() if STEP.match(l)]
    assert len(steps) == 2 and all(re.search(r' ETA \d+:\d\d$', l) for l in steps), log


def test_config_error_is_short(tmp_path, venv_bin):
    bad = tmp_path / 'bad.yml'
    bad.write_text("base_model: ftkit:tiny-llama\nlora_alhpa: 3\nlearning_rate: [\n")
    r = subprocess.run([str(venv_bin / 'ftkit'), 'train', str(bad)], capture_output=True, text=True)
    assert r.returncode == 1 and 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) <= 3, r.stderr
    assert 'bad.yml' in r.stderr and 'line' in r.stderr


def test_train_tiny_qwen3(tmp_path, venv_bin):
    "The second tiny family fine-tunes end to end too (ChatML template, no BOS, its own pad token)."
    out = tmp_path / 'qwen'
    r = subprocess.run(
        [
            str(venv_bin / 'ftkit'),
            'train',
            'examples/quickstart.yml',
            '--base_model=ftkit:tiny-qwen3',
            f'--output_dir={out}',
            f'--dataset_prepared_path={tmp_path}/prep',
            '--max_steps=30',
            '--logging_steps=1',
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    losses = [m['loss'] for m in map(json.loads, (out / 'metrics.jsonl').read_text().splitlines()) if 'loss' in m]
    assert len(losses) == 30 and sum(losses[-5:]) / 5 < 0.75 * sum(losses[:3]) / 3, losses
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out)  # the tokenizer saved with the adapter renders ChatML
    assert tok.apply_chat_template([dict(role='user', content='Hi')], tokenize=False).startswith('<|im_start|>user')
