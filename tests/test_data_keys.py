"""The Axolotl data keys, each observed in what it changes: the rendered text, the tokenizer, the rows kept, their
order, the files written, or the batches the trainer gets. (Token-for-token agreement with Axolotl itself is
tests/test_golden.py.)"""

import json, warnings
from pathlib import Path
from types import SimpleNamespace as NS
import pytest
from ftkit.config import load_config, DatasetConfig
from ftkit.errors import DataError, ModelError

GOLDEN = Path(__file__).parent / 'data' / 'golden'
LLAMA = str(GOLDEN / 'tokenizers' / 'llama')
QWEN3 = str(GOLDEN / 'tokenizers' / 'qwen3')
CHAT = [
    dict(messages=[dict(role='user', content=f'Question {i}?'), dict(role='assistant', content=f'Answer {i}.')])
    for i in range(40)
]


def cfg_of(tmp_path=None, datasets=None, base=LLAMA, **kw):
    d = dict(base_model=base, learning_rate=1e-4, datasets=datasets or [dict(path='x.jsonl', type='chat_template')])
    if tmp_path is not None:
        d.update(dataset_prepared_path=str(tmp_path / 'prep'), output_dir=str(tmp_path / 'run'))
    return load_config(d | kw, warn=False)


def write(path, rows):
    path.write_text(''.join(json.dumps(r) + '\n' for r in rows))
    return str(path)


@pytest.fixture(scope='module')
def tok():
    from ftkit.tokenizer import load_tokenizer

    return load_tokenizer(cfg_of())


def rows_of(cfg, tok, row):
    from ftkit.data import row_tokenizer

    return row_tokenizer(cfg.datasets[0], cfg, tok)(row, 'x.jsonl row 0')


def trained(tok, pieces):
    ((ids, labels),) = pieces
    return tok.decode([i for i, l in zip(ids, labels) if l != -100])


# ---- chat templates, kwargs, thinking


def test_every_named_template_validates_and_renders(tok):
    from ftkit.templates import SHIPPED_TEMPLATES, CHAT_TEMPLATES

    row = dict(messages=[dict(role='user', content='Hi'), dict(role='assistant', content='Hello.')])
    assert len(SHIPPED_TEMPLATES) == 36
    for name in SHIPPED_TEMPLATES:
        assert name in CHAT_TEMPLATES
        cfg = cfg_of(datasets=[dict(path='x.jsonl', type='chat_template', chat_template=name)])
        assert 'Hello.' in tok.decode(rows_of(cfg, tok, row)[0][0]), name


def test_a_template_that_refuses_a_row_names_it(tok):
    cfg = cfg_of(chat_template='gemma')
    row = dict(
        messages=[
            dict(role='system', content='S'),
            dict(role='user', content='Hi'),
            dict(role='assistant', content='Yo'),
        ]
    )
    with pytest.raises(DataError) as e:
        rows_of(cfg, tok, row)
    assert 'x.jsonl row 0' in str(e.value) and '`gemma`' in e.value.msg and 'System role not supported' in e.value.msg
    assert '\n' not in e.value.msg


def test_chat_template_kwargs_reach_the_template(tok):
    jinja = "{% for m in messages %}{{ greeting }}{{ m['role'] }}: {{ m['content'] }}<|eot_id|>{% endfor %}"
    row = dict(messages=[dict(role='user', content='Hi'), dict(role='assistant', content='Hello.')])
    plain = tok.decode(rows_of(cfg_of(chat_template='jinja', chat_template_jinja=jinja), tok, row)[0][0])
    cfg = cfg_of(chat_template='jinja', chat_template_jinja=jinja, chat_template_kwargs=dict(greeting='>> '))
    ids, labels = rows_of(cfg, tok, row)[0]
    assert '>> ' not in plain and tok.decode(ids).count('>> ') == 2
    assert trained(tok, [(ids, labels)]) == ' Hello.<|eot_id|>'  # ': Hello' splits as ':', ' Hello': it overlaps


THINK_TEMPLATE = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' }}"
    "{% if m.thinking is defined %}{{ '<think>' + m.thinking + '</think>' }}{% endif %}"
    "{{ m['content'] + '<|im_end|>\\n' }}{% endfor %}"
)


def test_split_thinking_moves_reasoning_to_the_template_key():
    from ftkit.tokenizer import load_tokenizer

    row = dict(
        messages=[dict(role='user', content='2+2?'), dict(role='assistant', content='<reasoning>add</reasoning>  4')]
    )
    ds = dict(path='x.jsonl', type='chat_template', template_thinking_key='thinking')
    base = dict(base=QWEN3, chat_template='jinja', chat_template_jinja=THINK_TEMPLATE)
    cfg = cfg_of(datasets=[ds | dict(split_thinking=True)], **base)
    tq = load_tokenizer(cfg)
    ids, labels = rows_of(cfg, tq, row)[0]
    assert '<think>add</think>4<|im_end|>' in tq.decode(ids)  # moved out, the rest left-stripped
    assert trained(tq, [(ids, labels)]) == '<think>add</think>4<|im_end|>'  # the turn's reasoning is trained with it
    off = cfg_of(datasets=[ds], **base)
    assert '<reasoning>add</reasoning>  4' in tq.decode(rows_of(off, tq, row)[0][0])


def test_field_thinking_is_said_to_have_no_effect(tok):
    with pytest.warns(UserWarning, match='field_thinking: thought` has no effect'):
        rows_of(cfg_of(datasets=[dict(path='x.jsonl', type='chat_template', field_thinking='thought')]), tok, CHAT[0])


# ---- prompt formats


def test_unknown_load_fn_lists_the_supported(tok):
    from ftkit.data import BatchTokenizer

    ds = DatasetConfig(path='x.jsonl', type='alpaca_w_system.load_nothing')
    with pytest.raises(DataError) as e:
        BatchTokenizer(ds, cfg_of(), tok)
    assert 'alpaca_w_system.load_open_orca_chatml' in str(e.value) and '\n' not in e.value.msg


def test_user_defined_keys_on_the_dataset_entry(tok):
    ds = dict(
        path='x.jsonl',
        type='user_defined',
        field_instruction='q',
        field_output='a',
        no_input_format='Q: {instruction}\nA: ',
    )
    ids, labels = rows_of(cfg_of(datasets=[ds]), tok, dict(q='2+2?', a='4'))[0]
    assert (
        tok.decode(ids) == '<|begin_of_text|>Q: 2+2?\nA: 4<|eot_id|>' and trained(tok, [(ids, labels)]) == '4<|eot_id|>'
    )


# ---- tokenizer keys


def test_tokenizer_keys_reach_from_pretrained(monkeypatch):
    import transformers
    from ftkit.tokenizer import load_tokenizer

    seen = {}
    orig = transformers.AutoTokenizer.from_pretrained

    def spy(name, **kw):
        seen.update(kw)
        return orig(name, **kw)

    monkeypatch.setattr(transformers.AutoTokenizer, 'from_pretrained', spy)
    load_tokenizer(cfg_of(tokenizer_use_fast=False, tokenizer_legacy=False, tokenizer_type='AutoTokenizer'))
    assert seen['use_fast'] is False and seen['legacy'] is False


def test_tokenizer_type_and_added_tokens_overrides(tmp_path):
    from ftkit.tokenizer import load_tokenizer

    t = load_tokenizer(cfg_of(tokenizer_type='PreTrainedTokenizerFast'))
    assert t('Hi there')['input_ids'] == load_tokenizer(cfg_of())('Hi there')['input_ids']
    with pytest.raises(ModelError, match='tokenizer_type: Nope'):
        load_tokenizer(cfg_of(tokenizer_type='Nope'))
    t = load_tokenizer(cfg_of(tmp_path, added_tokens_overrides={8: '<tool_call>'}))
    assert t.encode('<tool_call>', add_special_tokens=False) == [8] and len(t) == len(load_tokenizer(cfg_of()))
    assert (tmp_path / 'run' / 'tokenizer' / 'tokenizer.json').exists()


# ---- loading, mixing, order


def test_train_on_split_and_trust_remote_code(tmp_path, monkeypatch):
    import datasets
    from ftkit.data import load_source

    repo = tmp_path / 'repo'
    repo.mkdir()
    write(repo / 'train.jsonl', CHAT[:5])
    write(repo / 'test.jsonl', CHAT[5:7])
    assert len(load_source(DatasetConfig(path=str(repo)))) == 5
    assert len(load_source(DatasetConfig(path=str(repo), train_on_split='test'))) == 2
    with pytest.raises(DataError, match='disagree'):
        load_source(DatasetConfig(path=str(repo), split='train', train_on_split='test'))
    seen = {}

    def fake(path, trust_remote_code=None, **kw):
        seen['trc'] = trust_remote_code
        return datasets.Dataset.from_list(CHAT[:1])

    monkeypatch.setattr(datasets, 'load_dataset', fake)
    load_source(DatasetConfig(path='acme/chat', trust_remote_code=True))
    assert seen['trc'] is True


def test_a_missing_file_is_never_a_hub_lookup(tmp_path):
    from ftkit.data import load_source, expects_local

    with pytest.raises(DataError, match=f'no such file: {tmp_path}/nope.jsonl'):
        load_source(DatasetConfig(path=str(tmp_path / 'nope.jsonl')))
    assert expects_local('data/train.jsonl') and expects_local('notes.v2') and expects_local('./d')
    assert (
        not expects_local('tatsu-lab/alpaca')
        and not expects_local('teknium/OpenHermes-2.5')
        and not expects_local('imdb')
    )


def prepared(tmp_path, tok, **kw):
    from ftkit.data import prepare_dataset

    a, b = write(tmp_path / 'a.jsonl', CHAT[:20]), write(tmp_path / 'b.jsonl', CHAT[20:30])
    ds = [dict(path=a, type='chat_template'), dict(path=b, type='chat_template')]
    return prepare_dataset(cfg_of(tmp_path, datasets=ds, **kw), tok, log=None)


def order(dd, split='train'):
    return list(zip(dd[split]['source'], dd[split]['row']))


def test_merge_order_keys(tmp_path, tok):
    in_order = [(0, i) for i in range(20)] + [(1, i) for i in range(10)]
    assert order(prepared(tmp_path, tok, shuffle_merged_datasets=False)[0]) == in_order
    each = order(prepared(tmp_path, tok, shuffle_merged_datasets=False, shuffle_before_merging_datasets=True)[0])
    assert each != in_order and sorted(each) == in_order and [s for s, _ in each] == [0] * 20 + [1] * 10
    mixed = order(prepared(tmp_path, tok)[0])
    assert sorted(mixed) == in_order and [s for s, _ in mixed] != [0] * 20 + [1] * 10
    dd, _ = prepared(tmp_path, tok, curriculum_sampling=True, val_set_size=5)
    assert order(dd) == in_order[:25] and order(dd, 'eval') == in_order[25:]


def test_dataset_shard_num_and_idx(tmp_path, tok):
    dd, st = prepared(tmp_path, tok, shuffle_merged_datasets=False, dataset_shard_num=3, dataset_shard_idx=1)
    assert order(dd) == [(0, i) for i in range(10, 20)] and st['rows_out'] == 10


def test_eval_sequence_len_keeps_longer_test_rows(tmp_path, tok):
    from ftkit.data import prepare_dataset

    long = [dict(messages=[dict(role='user', content='word ' * 60), dict(role='assistant', content='ok')])] * 3
    t = write(tmp_path / 't.jsonl', long + CHAT[:2])
    ds = [dict(path=write(tmp_path / 'a.jsonl', CHAT[:10]), type='chat_template')]
    test = [dict(path=t, type='chat_template')]
    kw = dict(datasets=ds, test_datasets=test, sequence_len=48)
    assert len(prepare_dataset(cfg_of(tmp_path, **kw), tok, log=None)[0]['eval']) == 2
    assert len(prepare_dataset(cfg_of(tmp_path, eval_sequence_len=128, **kw), tok, log=None)[0]['eval']) == 5


def test_num_dataset_shards_to_save(tmp_path, tok):
    from ftkit.data import load_or_prepare, fingerprint

    ds = [dict(path=write(tmp_path / 'a.jsonl', CHAT), type='chat_template')]
    cfg = cfg_of(tmp_path, datasets=ds, num_dataset_shards_to_save=3)
    load_or_prepare(cfg, tok, log=None)
    train = Path(cfg.dataset_prepared_path) / fingerprint(cfg, tok) / 'data' / 'train'
    assert len(list(train.glob('*.arrow'))) == 3


def test_curriculum_sampling_trains_in_dataset_order(tmp_path, tok):
    "The trainer's batches follow the dataset order, packed or not."
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from ftkit.methods.sft import SFT

    ds = [dict(path=write(tmp_path / 'a.jsonl', CHAT), type='chat_template')]
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tok),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=8,
        )
    )
    for packing in (False, True):
        cfg = cfg_of(
            tmp_path / str(packing),
            datasets=ds,
            curriculum_sampling=True,
            sample_packing=packing,
            micro_batch_size=2,
            sequence_len=64,
            max_steps=1,
        )
        sft = SFT()
        data = sft.prepare(cfg, tok, log=None)
        rows = data.prepared['train']
        assert rows['row'] == list(range(40))
        seen = []
        for batch in sft.trainer(cfg, model, tok, data).get_train_dataloader():
            ids = batch['input_ids']
            seen += [r[r != tok.pad_token_id].tolist() for r in ids] if not packing else [ids[0].tolist()]
        flat = [i for r in seen for i in r]
        assert flat == [i for r in rows['input_ids'] for i in r], packing


def test_sample_packing_sequentially_packs_in_order(tmp_path, tok):
    from ftkit.methods.sft import packed_datasets

    dd, _ = prepared(tmp_path, tok, shuffle_merged_datasets=False)
    cfg = cfg_of(sample_packing=True, sample_packing_sequentially=True, sequence_len=64)
    bins = packed_datasets(cfg, dd, log=None)[0].bins
    assert [i for b in bins for i in b] == list(range(30)) and len(bins) > 1


def test_pad_to_multiple_of_and_batch_flattening(tok):
    from ftkit.methods.sft import SFT

    model = NS(config=NS(_attn_implementation='sdpa'))
    rows = [dict(input_ids=[5, 6, 7], labels=[5, 6, 7]), dict(input_ids=[8, 9], labels=[8, 9])]
    c = lambda **kw: SFT().collator(cfg_of(micro_batch_size=2, **kw), model, tok)(rows)
    assert c()['input_ids'].shape == (2, 64) and c(pad_to_multiple_of=8)['input_ids'].shape == (2, 8)
    assert c(pad_to_sequence_len=True, sequence_len=100)['input_ids'].shape == (2, 128)
    flat = c(batch_flattening=True)
    assert flat['input_ids'].tolist() == [[5, 6, 7, 8, 9]] and flat['position_ids'].tolist() == [[0, 1, 2, 0, 1]]
    assert c(batch_flattening='auto')['input_ids'].shape == (2, 64)  # sdpa: Axolotl's auto does not flatten
    varlen = NS(config=NS(_attn_implementation='flash_attention_2'))
    assert SFT().collator(cfg_of(micro_batch_size=2, batch_flattening='auto'), varlen, tok)(rows)[
        'input_ids'
    ].shape == (1, 5)


# ---- validation before anything runs


def test_check_data(tmp_path):
    from ftkit.data import check_data

    good = write(tmp_path / 'good.jsonl', CHAT[:3])
    bad = write(tmp_path / 'bad.jsonl', [CHAT[0], dict(messages=[dict(from_='user', content='x')]), dict(text='t')])
    cfg = cfg_of(
        datasets=[
            dict(path=good, type='chat_template'),
            dict(path=str(tmp_path / 'missing.jsonl'), type='chat_template'),
            dict(path='acme/some-hub-set', type='chat_template'),
            dict(path=bad, type='chat_template'),
            dict(path=good, type='alpaca'),
        ]
    )
    problems = check_data(cfg)
    assert problems[0] == f"datasets[1]: no such file: {tmp_path / 'missing.jsonl'}"
    assert f"datasets[3]: {bad}: row 1: message 0 has no `role` (set message_property_mappings)" in problems
    assert f"datasets[3]: {bad}: row 2: no `messages`" in problems
    assert any(
        p.startswith(f"datasets[4]: {good}: declared `type: alpaca` but the rows look like chat_template")
        for p in problems
    )
    assert len(problems) == 4 and all('\n' not in p for p in problems)
    assert check_data(cfg_of(datasets=[dict(path=good, type='chat_template')])) == []


# ---- the cache


def test_fingerprint_covers_the_new_keys(tmp_path, tok):
    from ftkit.data import fingerprint

    ds = [dict(path=write(tmp_path / 'a.jsonl', CHAT[:3]), type='chat_template')]
    base = fingerprint(cfg_of(datasets=ds), tok)
    changes = dict(
        chat_template_kwargs=dict(enable_thinking=False),
        default_system_message='x',
        eval_sequence_len=99,
        dataset_shard_num=2,
        dataset_shard_idx=0,
        shuffle_before_merging_datasets=True,
        curriculum_sampling=True,
        num_dataset_shards_to_save=2,
        eot_tokens=['<|eot_id|>'],
        tokenizer_type='AutoTokenizer',
        tokenizer_use_fast=False,
        tokenizer_legacy=False,
        added_tokens_overrides={7: '<x>'},
    )
    for k, v in changes.items():
        assert fingerprint(cfg_of(datasets=ds, **{k: v}), tok) != base, k
    for k, v in dict(
        train_on_split='test',
        split_thinking=True,
        field_thinking='t',
        template_thinking_key='t',
        trust_remote_code=True,
        input_transform='chat',
    ).items():
        assert fingerprint(cfg_of(datasets=[ds[0] | {k: v}]), tok) != base, k
