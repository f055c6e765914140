"""Streams and preparation at scale: a continued-pretraining config trains the tiny model from a local
`pretraining_dataset` with a falling loss; an interrupted and resumed run trains on exactly the rows an
uninterrupted one does; two DDP processes read disjoint shares; a data file is hashed once; a process of
"node 1" waits for the cache that rank 0 of node 0 builds; Axolotl's stream configs validate; a stream's config
problems are one line each."""

import json, os, re, signal, subprocess, sys, textwrap
from pathlib import Path
import pytest, yaml

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('HF_DATASETS_OFFLINE', '1')
ROOT = Path(__file__).resolve().parents[1]


def stream_config(d: dict):
    "A validated `Config` from the dict `d`."
    from ftkit.config import load_config

    return load_config(d, warn=False)


def write_corpus(path, n=80, seed=11):
    "Generated text documents, each starting with its id (`doc 17.`), so what a rank trained on can be read back."
    from ftkit.tiny import sample_rows, write_jsonl

    rows = sample_rows('text', n=n, seed=seed)
    return write_jsonl([dict(text=f"doc {i}. {r['text']}") for i, r in enumerate(rows)], path)


RECORDER = '''
import json, os, re, signal
from pathlib import Path
from transformers import Trainer


class Recorder(Trainer):
    "Writes the ids of the documents each micro-batch trains on (rank by rank); with STOP_AT, interrupts itself there."

    def training_step(self, model, inputs, *args, **kw):
        ids, pos = inputs['input_ids'][0].tolist(), inputs['position_ids'][0].tolist()
        starts = [i for i, p in enumerate(pos) if p == 0] + [len(pos)]
        docs = [self.processing_class.decode(ids[a:b]) for a, b in zip(starts, starts[1:])]
        seen = [int(m.group(1)) for t in docs for m in [re.search(r'doc (\\d+)\\.', t)] if m]
        rank = int(os.environ.get('RANK', 0))
        with open(Path(self.args.output_dir) / f'seen-rank{rank}.jsonl', 'a') as f:
            f.write(json.dumps(dict(step=self.state.global_step + 1, docs=seen)) + '\\n')
        if os.environ.get('STOP_AT') == str(self.state.global_step + 1) and not getattr(self, 'stopped', False):
            self.stopped = True
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C: ftkit stops after this step and saves a checkpoint
        return super().training_step(model, inputs, *args, **kw)
'''


def seen(run, rank=0):
    return [json.loads(l) for l in (Path(run) / f'seen-rank{rank}.jsonl').read_text().splitlines()]


def base(tmp, out, **kw):
    c = dict(
        base_model='ftkit:tiny-llama',
        adapter='lora',
        lora_target_linear=True,
        learning_rate=5e-3,
        pretraining_dataset=[dict(path=str(tmp / 'corpus.jsonl'), type='pretrain', text_column='text')],
        streaming_multipack_buffer_size=48,
        sequence_len=128,
        sample_packing=True,
        micro_batch_size=2,
        gradient_accumulation_steps=2,
        max_steps=10,
        logging_steps=1,
        save_strategy='steps',
        save_steps=100,
        trainer_cls='recorder.Recorder',
        output_dir=str(tmp / out),
        dataset_prepared_path=str(tmp / 'prep'),
    )
    return c | kw


@pytest.fixture
def corpus_dir(tmp_path, monkeypatch):
    write_corpus(tmp_path / 'corpus.jsonl')
    (tmp_path / 'recorder.py').write_text(RECORDER)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_pretraining_stream_trains_and_resumes_where_it_was(corpus_dir, monkeypatch):
    "An uninterrupted run vs. one interrupted at step 4 (Ctrl-C) and resumed: the same documents, in the same order."
    import ftkit
    import ftkit.training

    tmp = corpus_dir
    whole = ftkit.train(stream_config(base(tmp, 'whole')), log=None)
    assert whole.losses[-1] < whole.losses[0] - 0.3, whole.losses  # continued pre-training learns the corpus
    monkeypatch.setenv('STOP_AT', '4')
    first = ftkit.train(stream_config(base(tmp, 'cut')), log=None)
    monkeypatch.delenv('STOP_AT')
    assert first.interrupted == 'SIGINT' and (tmp / 'cut' / 'checkpoint-4' / 'ftkit-stream-rank0.json').exists()
    pos = json.loads((tmp / 'cut' / 'checkpoint-4' / 'ftkit-stream-rank0.json').read_text())
    assert pos['consumed'] == 4 * 2 * 2 and pos['window']['first_item'] <= pos['consumed']
    said = []
    rest = ftkit.train(stream_config(base(tmp, 'cut', auto_resume_from_checkpoints=True)), log=said.append)
    assert any('Resuming from' in s for s in said) and rest.steps == 10
    a, b = seen(tmp / 'whole'), seen(tmp / 'cut')
    assert [r['step'] for r in b] == [s for s in range(1, 11) for _ in range(2)]  # steps 1-4, then 5-10 resumed
    assert [r['docs'] for r in b] == [r['docs'] for r in a]  # the concatenation of rows seen is the uninterrupted run's
    docs = [d for r in a for d in r['docs']]
    assert len(set(docs)) == 80 and len(docs) > 80  # several windows, and into a second pass over the corpus


def test_stream_dry_run_plan_estimates_tokens_per_step(corpus_dir):
    "`plan` (what `--dry-run` prints) works on a stream and says so: the preview and the tokens per optimizer step."
    from ftkit.training import plan, format_plan

    p = plan(stream_config(base(corpus_dir, 'plan', trainer_cls=None)))
    text = format_plan(p)
    assert 'is read while training' in text and 'tokens per optimizer step' in text, text


DDP_SCRIPT = '''
import json, os, sys
sys.path.insert(0, {tests!r})
from test_streaming import stream_config
import ftkit

cfg = stream_config(json.loads(open('cfg.json').read()))
ftkit.train(cfg, log=None)
'''


def test_ddp_ranks_read_disjoint_shares(corpus_dir):
    "2-process CPU DDP (gloo, through accelerate launch): each rank trains on its own documents, none on both."
    tmp = corpus_dir
    (tmp / 'cfg.json').write_text(json.dumps(base(tmp, 'ddp', max_steps=4, save_steps=4)))
    (tmp / 'ddp.py').write_text(DDP_SCRIPT.format(tests=str(ROOT / 'tests')))
    cmd = [sys.executable, '-m', 'accelerate.commands.launch', '--num_processes', '2', '--multi_gpu', 'ddp.py']
    env = dict(os.environ, PYTHONPATH=f"{tmp}:{ROOT}", OMP_NUM_THREADS='1')
    r = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    d0 = {d for x in seen(tmp / 'ddp', 0) for d in x['docs']}
    d1 = {d for x in seen(tmp / 'ddp', 1) for d in x['docs']}
    assert d0 and d1 and not d0 & d1, (d0 & d1)
    info = json.loads((tmp / 'ddp' / 'distributed.json').read_text())
    assert info['world_size'] == 2 and info['ranks_in_sync'], info
    ck = tmp / 'ddp' / 'checkpoint-4'
    positions = [json.loads((ck / f'ftkit-stream-rank{r}.json').read_text()) for r in (0, 1)]
    assert [p['rank'] for p in positions] == [0, 1] and all(p['world'] == 2 and p['consumed'] == 16 for p in positions)


def test_a_data_file_is_read_once(tmp_path, monkeypatch):
    "The fingerprint reads a file's content once; while its size and mtime stay, it is known from the record."
    import ftkit.data as fd
    from ftkit.config import load_config
    from ftkit.tokenizer import load_tokenizer

    p = write_corpus(tmp_path / 'c.jsonl', n=50)
    cfg = load_config(
        dict(base_model='ftkit:tiny-llama', learning_rate=1e-4, datasets=[dict(path=str(p), type='completion')],
             dataset_prepared_path=str(tmp_path / 'prep')),
        warn=False,
    )
    tok = load_tokenizer(cfg)
    reads, digest = [], fd._file_digest
    monkeypatch.setattr(fd, '_file_digest', lambda path, h: (reads.append(Path(path).name), digest(path, h))[1])
    f1 = fd.fingerprint(cfg, tok)
    assert reads == ['c.jsonl']
    assert fd.fingerprint(cfg, tok) == f1 and reads == ['c.jsonl']  # unchanged: not read again
    os.utime(p)  # touched: read again (same content, same fingerprint)
    assert fd.fingerprint(cfg, tok) == f1 and reads == ['c.jsonl'] * 2
    p.write_text(p.read_text() + '{"text": "doc 50. more"}\n')  # changed: read again, new fingerprint
    assert fd.fingerprint(cfg, tok) != f1 and reads == ['c.jsonl'] * 3


NODE_SCRIPT = '''
import json, sys, time
from ftkit.config import load_config
from ftkit.tokenizer import load_tokenizer
from ftkit.data import load_or_prepare, fingerprint, quiet_libraries

cfg = load_config(json.loads(sys.argv[1]), warn=False)
quiet_libraries()
tok = load_tokenizer(cfg)
said = []
t0 = time.time()
dd, stats = load_or_prepare(cfg, tok, log=said.append)
print(json.dumps(dict(fp=fingerprint(cfg, tok), rows=len(dd['train']), said=said, t0=t0, t1=time.time())))
'''


def test_node_1_waits_for_the_cache_node_0_builds(tmp_path):
    "Two processes share the prepared-data folder: one pretends to be node 1 (rank 2 of 4) and waits; rank 0 builds."
    from ftkit.tiny import sample_rows, write_jsonl

    data = write_jsonl(sample_rows('chat', n=400, seed=3), tmp_path / 'chat.jsonl')
    cfg = dict(
        base_model='ftkit:tiny-llama', learning_rate=1e-4, datasets=[dict(path=str(data), type='chat_template')],
        dataset_prepared_path=str(tmp_path / 'shared'), ddp_timeout=300,
    )
    (tmp_path / 'node.py').write_text(NODE_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ('RANK', 'LOCAL_RANK', 'GROUP_RANK', 'NODE_RANK', 'WORLD_SIZE')}

    def start(**ranks):
        e = dict(env, WORLD_SIZE='4', **{k: str(v) for k, v in ranks.items()})
        return subprocess.Popen([sys.executable, 'node.py', json.dumps(cfg)], cwd=tmp_path, env=e,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    waiter = start(RANK=2, LOCAL_RANK=0, GROUP_RANK=1)  # first: it has nothing to load yet
    import time

    time.sleep(3)
    builder = start(RANK=0, LOCAL_RANK=0, GROUP_RANK=0)
    outs = []
    for p in (builder, waiter):
        o, e = p.communicate(timeout=400)
        assert p.returncode == 0, e[-3000:]
        outs.append(json.loads(o.strip().splitlines()[-1]))
    b, w = outs
    assert b['fp'] == w['fp'] and b['rows'] == w['rows'] == 400
    assert not any('from the cache' in s for s in b['said'])  # rank 0 built it
    assert any('from the cache' in s for s in w['said']) and w['t1'] > b['t0']  # node 1 waited, then loaded it
    assert (tmp_path / 'shared' / f"{b['fp']}.ready").exists()


def test_a_waiting_node_names_the_folder_at_its_timeout(tmp_path, monkeypatch):
    from ftkit.config import load_config
    from ftkit.data import load_or_prepare
    from ftkit.errors import DataError
    from ftkit.tokenizer import load_tokenizer

    cfg = load_config(
        dict(base_model='ftkit:tiny-llama', learning_rate=1e-4, datasets=[dict(path='ftkit:samples/chat', type='chat_template')],
             dataset_prepared_path=str(tmp_path / 'not-shared'), ddp_timeout=1),
        warn=False,
    )
    tok = load_tokenizer(cfg)
    (tmp_path / 'not-shared').mkdir()
    for k, v in dict(RANK='1', LOCAL_RANK='0', GROUP_RANK='1', WORLD_SIZE='2').items():
        monkeypatch.setenv(k, v)
    with pytest.raises(DataError) as e:
        load_or_prepare(cfg, tok, log=None)
    msg = str(e.value)
    assert 'rank 1 (node 1) waited' in msg and str(tmp_path / 'not-shared') in msg and 'ftkit preprocess' in msg


AXOLOTL = ROOT / 'tests' / 'data' / 'axolotl-examples'  # Axolotl's example configs, as shipped with 0.19
STREAM_EXAMPLES = ['streaming_pretrain.yaml', 'streaming_sft.yaml', 'qwen2_adamw-pretrain-fsdp2.yaml']


@pytest.mark.parametrize('name', STREAM_EXAMPLES + ['pretrain_stream.yml'])
def test_axolotl_stream_configs_validate(name):
    from ftkit.config import load_config

    path = ROOT / 'examples' / name if name.endswith('.yml') else AXOLOTL / name
    cfg = load_config(str(path), warn=False)
    from ftkit.streaming import is_streaming, stream_entry

    assert is_streaming(cfg) and cfg.max_steps and stream_entry(cfg).path


def test_check_data_reads_pretraining_entries(tmp_path):
    "What `validate` and `--dry-run` check first: a missing corpus, and first rows without `text_column`, one line each."
    from ftkit.data import check_data

    at = lambda e: check_data(stream_config(dict(base_model='x', learning_rate=1e-3, max_steps=3, pretraining_dataset=[e])))
    assert at(dict(path=str(tmp_path / 'nope.jsonl'))) == [f"pretraining_dataset[0]: no such file: {tmp_path / 'nope.jsonl'}"]
    bad = at(dict(path='ftkit:samples/chat', text_column='text'))
    assert len(bad) == 5 and 'row 0: no text in `text` (set `text_column`)' in bad[0]
    assert at(dict(path='ftkit:samples/text', type='pretrain', text_column='text')) == []


def test_stream_config_problems_are_one_line_each():
    "What a stream cannot do is refused by the config check, with the key's line."
    from ftkit.config import load_config
    from ftkit.errors import ConfigError

    text = textwrap.dedent(
        """\
        base_model: ftkit:tiny-llama
        learning_rate: 1e-3
        pretraining_dataset:
          - path: a.jsonl
          - path: b.jsonl
        val_set_size: 0.1
        pretrain_multipack_attn: false
        """
    )
    with pytest.raises(ConfigError) as e:
        load_config(text)
    msg = str(e.value)
    assert 'line 3: `pretraining_dataset`: a stream reads one entry and 2 are given' in msg, msg
    assert 'line 3: `pretraining_dataset` needs `max_steps`' in msg and 'line 6: `val_set_size` cannot split a stream' in msg
    assert 'line 7: `pretrain_multipack_attn: false`' in msg
    ok = load_config(dict(base_model='x', learning_rate=1e-3, max_steps=5, pretraining_dataset='c.jsonl',
                          pretrain_multipack_buffer_size=64), warn=False)
    assert ok.pretraining_dataset[0].type == 'pretrain' and ok.streaming_multipack_buffer_size == 64 and ok.datasets == []
    with pytest.raises(ConfigError, match='streams SFT and pre-training data only'):
        load_config(dict(base_model='x', learning_rate=1e-3, max_steps=5, rl='dpo', streaming=True,
                         datasets=[dict(path='p.jsonl', type='chatml.intel')]), warn=False)


def test_a_malformed_streamed_file_is_one_line(tmp_path):
    "A JSON line cut short in a streamed file: the preview (what `validate`/`--dry-run` read) names the file and line."
    from ftkit.errors import DataError
    from ftkit.streaming import stream_preview
    from ftkit.tokenizer import load_tokenizer

    f = tmp_path / 'corpus.jsonl'
    write_corpus(f, n=40)
    lines = f.read_text().splitlines()
    lines[29] = lines[29][: len(lines[29]) // 2]
    f.write_text('\n'.join(lines) + '\n')
    cfg = stream_config(dict(base_model='ftkit:tiny-llama', learning_rate=1e-3, max_steps=3, sequence_len=64,
                             pretraining_dataset=[dict(path=str(f), type='pretrain')]))
    with pytest.raises(DataError) as e:
        stream_preview(cfg, load_tokenizer(cfg), rows=100)
    assert 'line 30 is not valid JSON' in str(e.value) and str(f) in str(e.value), e.value


def test_saves_per_epoch_once_saves_at_the_end_not_every_step():
    "Axolotl's streamed FSDP2 example (`saves_per_epoch: 1`, one epoch, `max_steps: 305`) saves once, as in Axolotl."
    from ftkit.config import derived, load_config

    cfg = load_config(AXOLOTL / 'qwen2_adamw-pretrain-fsdp2.yaml', warn=False)
    assert derived(cfg, 1, 10_000)['save_steps'] == 305
    cfg = load_config(dict(base_model='x', learning_rate=1e-3, max_steps=100, saves_per_epoch=4,
                           pretraining_dataset='c.jsonl'), warn=False)
    assert derived(cfg, 1, 10_000)['save_steps'] == 25
