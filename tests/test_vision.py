"""Vision-language models: the shapes sample, the tiny VLM, multimodal rows and labels (token for token against
Axolotl 0.19's multimodal collator), training ftkit's tiny VLM on CPU from an Axolotl-style config with image paths,
merging into a folder that `AutoProcessor` + `AutoModelForImageTextToText` load, and Axolotl's vision examples.

The tiny VLM is built once (about a minute on 2 cores) and cached. Until `ftkit.tiny.resolve_model` maps
`ftkit:tiny-vlm` and the config knows `processor_type`, these tests pass the built folder as `base_model` and set
`processor_type` on the validated config (it keeps unknown attributes)."""

import json, random, shutil
from pathlib import Path
import pytest
from ftkit.config import load_config
from ftkit.errors import DataError

GOLDEN = Path(__file__).parent / 'data' / 'golden' / 'vision'
EXAMPLES = Path(__file__).parent / 'data' / 'axolotl-examples'


@pytest.fixture(scope='module')
def vlm():
    from ftkit.vision import tiny_vlm

    return tiny_vlm()


def vcfg(base_model, data, **kw):
    "A multimodal config as Axolotl's examples write it (processor_type set on the validated config)."
    ds = kw.pop('ds', {})
    cfg = load_config(
        dict(
            base_model=str(base_model),
            skip_prepare_dataset=True,
            remove_unused_columns=False,
            sample_packing=False,
            learning_rate=1e-3,
            sequence_len=128,
            datasets=[dict(path=str(data), type='chat_template', **ds)],
        )
        | kw,
        warn=False,
    )
    cfg.processor_type = 'AutoProcessor'
    return cfg


def prepared(cfg, bad='raise'):
    from ftkit.tokenizer import load_tokenizer
    from ftkit.vision import load_processor, prepare_vision

    tok = load_tokenizer(cfg)
    processor = load_processor(cfg, tok)
    dd, stats = prepare_vision(cfg, tok, processor, log=None, bad=bad)
    return {r['row']: r for r in dd['train']}, stats, tok, processor


def test_shapes_sample_is_deterministic_and_true(tmp_path):
    from PIL import Image
    from ftkit.vision import COLOURS, shapes_path, write_shapes

    a, b = write_shapes(tmp_path / 'a', n=24, seed=3), write_shapes(tmp_path / 'b', n=24, seed=3)
    assert a.read_bytes() == b.read_bytes()
    rows = [json.loads(l) for l in a.read_text().splitlines()]
    for r in rows:
        part = r['messages'][0]['content'][0]
        f = a.parent / part['path']
        assert (b.parent / part['path']).read_bytes() == f.read_bytes()
        im = Image.open(f).convert('RGB')
        assert im.size == (32, 32)
        px = im.tobytes()
        painted = [c for c in (tuple(px[i : i + 3]) for i in range(0, len(px), 3)) if c != (250, 250, 250)]
        dominant = max(set(painted), key=painted.count)
        assert dominant == COLOURS[r['colour']], (f, dominant)
        assert r['messages'][1]['content'][0]['text'] == f"I see a {r['colour']} {r['shape']}."
    bundled = shapes_path()
    assert len(bundled.read_text().splitlines()) == 300 and len(list((bundled.parent / 'images').glob('*.png'))) == 300


def test_tiny_vlm_loads_with_transformers(vlm):
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from ftkit.vision import shape_image

    info = json.loads((vlm / 'ftkit_tiny.json').read_text())
    assert info['warmup_loss'][1] < info['warmup_loss'][0] / 10
    processor = AutoProcessor.from_pretrained(vlm)
    model = AutoModelForImageTextToText.from_pretrained(vlm)
    assert type(model).__name__ == 'LlavaForConditionalGeneration' and processor.tokenizer.chat_template
    msgs = [dict(role='user', content=[dict(type='image'), dict(type='text', text='Describe the image.')])]
    text = processor.apply_chat_template(msgs, add_generation_prompt=True)
    x = processor(text=[text], images=[shape_image('square', 'blue', random.Random(1))], return_tensors='pt')
    assert (x['input_ids'] == processor.image_token_id).sum() == 16
    out = model.generate(**x, max_new_tokens=8, do_sample=False)
    assert 'blue' in processor.decode(out[0, x['input_ids'].shape[1] :], skip_special_tokens=True)


@pytest.mark.parametrize('case', sorted(GOLDEN.glob('*.json')), ids=lambda p: p.stem)
def test_labels_match_axolotl(case, tmp_path):
    "Axolotl 0.19's MultiModalChatDataCollator (Llama 3.2 Vision layout) and ftkit give the same ids and labels."
    fx = json.loads(case.read_text())
    shutil.copy(GOLDEN / fx['image'], tmp_path / fx['image'])
    (tmp_path / 'rows.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in fx['rows']))
    ds = {k: v for k, v in fx['dataset_config'].items() if k != 'type'}
    cfg = vcfg(GOLDEN / 'processor', tmp_path / 'rows.jsonl', chat_template=fx['chat_template'], ds=ds, **fx['config'])
    rows, *_ = prepared(cfg)
    for e in fx['expected']:
        assert rows[e['index']]['input_ids'] == e['input_ids'], e['index']
        assert rows[e['index']]['labels'] == e['labels'], e['index']


def test_row_formats_and_image_errors(vlm, tmp_path):
    import base64
    from ftkit.vision import shape_image

    (tmp_path / 'pics').mkdir()
    shape_image('circle', 'red', random.Random(0)).save(tmp_path / 'pics' / 'c.png')
    b64 = base64.b64encode((tmp_path / 'pics' / 'c.png').read_bytes()).decode()
    q = dict(type='text', text='What is it?')
    a = lambda t: dict(role='assistant', content=t)
    rows = [
        dict(conv=[dict(role='user', content=[dict(type='image', path='pics/c.png'), q]), a('A red circle.')]),
        dict(conv=[dict(role='user', content=[dict(type='image'), q]), a('A red circle.')], images=['pics/c.png']),
        dict(conv=[dict(role='user', content='What is it?'), a('A red circle.')], images=['pics/c.png']),
        dict(conv=[dict(role='user', content=[dict(type='image', base64=b64), q]), a('A red circle.')]),
        dict(conv=[dict(role='user', content=[dict(type='image', path='pics/missing.png'), q]), a('A red circle.')]),
    ]
    data = tmp_path / 'data' / 'rows.jsonl'
    data.parent.mkdir()
    # paths are relative to the data file's folder: put the pictures there
    shutil.copytree(tmp_path / 'pics', data.parent / 'pics')
    data.write_text(''.join(json.dumps(r) + '\n' for r in rows))
    cfg = vcfg(vlm, data, ds=dict(field_messages='conv'))
    with pytest.raises(DataError) as e:
        prepared(cfg)
    assert 'row 4' in str(e.value) and 'missing.png' in str(e.value)
    got, stats, tok, processor = prepared(cfg, bad='drop')
    assert sorted(got) == [0, 1, 2, 3] and stats['dropped'] == {'image failed to load': 1}
    image_id = processor.image_token_id
    for i, r in got.items():
        ids, labels = r['input_ids'], r['labels']
        assert ids.count(image_id) == 16 and all(l == -100 for t, l in zip(ids, labels) if t == image_id)
        trained = tok.decode([t for t, l in zip(ids, labels) if l != -100])
        assert trained == 'A red circle.<|eot_id|>', (i, trained)
    assert got[0]['input_ids'] == got[1]['input_ids'] == got[3]['input_ids']  # path, images column, base64
    assert 'What is it?<|image|>' in tok.decode(got[2]['input_ids'])  # with no placeholder, it ends the first user turn
    assert got[3]['images'][0]['bytes'] and got[0]['images'][0]['path'] == str((data.parent / 'pics/c.png').resolve())


def test_refusals_and_inspector_checks(vlm, tmp_path):
    from ftkit.inspector import inspect, token_html
    from ftkit.vision import write_shapes

    data = write_shapes(tmp_path, n=6, seed=2)
    with pytest.raises(DataError, match='sample_packing'):
        prepared(vcfg(vlm, data, sample_packing=True))
    lines = data.read_text().splitlines()
    broken = json.loads(lines[1])
    broken['messages'][0]['content'][0]['path'] = 'images/nope.png'
    lines[1] = json.dumps(broken)
    data.write_text('\n'.join(lines) + '\n')
    ins = inspect(vcfg(vlm, data))
    checks = dict(ins.checks)
    assert 'image failed to load' in checks and 'nope.png' in checks['image failed to load']
    ins.go(0)
    assert "<img src='data:image/png;base64," in ins.tokens.value and 'ft-image' in ins.tokens.value
    assert '&lt;|image|&gt;×16' in ins.tokens.value and ins.tokens.value.count('ft-image') == 1
    # a template that drops image parts, and image tokens that alone fill sequence_len
    text_only = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] if m['content'] is string else '' }}\n{% endfor %}"
    )
    assert 'template drops the image' in dict(
        inspect(vcfg(vlm, data, chat_template='jinja', chat_template_jinja=text_only)).checks
    )
    assert 'image tokens over sequence_len' in dict(inspect(vcfg(vlm, data, sequence_len=12)).checks)


def test_lora_on_the_language_model_only(vlm, tmp_path):
    from ftkit.methods.vision import load_vlm
    from ftkit.tokenizer import load_tokenizer

    cfg = vcfg(vlm, tmp_path / 'x.jsonl', adapter='lora', lora_r=4, lora_alpha=8, lora_target_linear=True)
    m = load_vlm(cfg, load_tokenizer(cfg))
    adapted = {n for n, _ in m.named_parameters() if 'lora_A' in n}
    assert adapted and all('language_model' in n for n in adapted) and len(adapted) == 4 * 7
    regex = vcfg(
        vlm,
        tmp_path / 'x.jsonl',
        adapter='lora',
        lora_r=4,
        lora_alpha=8,
        lora_target_modules=r'model.language_model.layers.[\d]+.(mlp|cross_attn|self_attn).(up|down|gate|q|k|v|o)_proj',
    )
    assert {n for n, _ in load_vlm(regex, load_tokenizer(regex)).named_parameters() if 'lora_A' in n} == adapted
    full = vcfg(vlm, tmp_path / 'x.jsonl')
    trainable = {n for n, p in load_vlm(full, load_tokenizer(full)).named_parameters() if p.requires_grad}
    assert trainable and not any('vision_tower' in n or 'projector' in n for n in trainable)


def test_train_merge_and_chat_on_cpu(vlm, tmp_path):
    "An Axolotl-style multimodal config with image paths trains the tiny VLM; the merge loads with transformers."
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from ftkit.merge import merge_lora
    from ftkit.training import train
    from ftkit.vision import shape_rows

    data = tmp_path / 'shapes'
    from ftkit.vision import write_shapes

    write_shapes(data, n=96, seed=5)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: on a shared 2-core machine one thread is >10x faster than two
    cfg = vcfg(
        vlm,
        data / 'shapes.jsonl',
        adapter='lora',
        lora_r=16,
        lora_alpha=32,
        lora_dropout=0.0,
        lora_target_modules=r'model.language_model.layers.[\d]+.(mlp|cross_attn|self_attn).(up|down|gate|q|k|v|o)_proj',
        micro_batch_size=8,
        num_epochs=4,
        learning_rate=5e-3,
        lr_scheduler='constant',
        warmup_steps=0,
        logging_steps=4,
        seed=7,
        save_strategy='no',
        output_dir=str(tmp_path / 'run'),
        dataset_prepared_path=str(tmp_path / 'prep'),
    )
    try:
        res = train(cfg, log=None)
    finally:
        torch.set_num_threads(threads)
    losses = res.losses
    assert len(losses) >= 10 and max(losses[-3:]) < losses[0] / 3, losses
    assert (tmp_path / 'run' / 'processor_config.json').exists()
    im, q, answer, shape, colour = shape_rows(1, seed=99)[0]
    reply = res.generate(q, image=im, max_new_tokens=12)
    merged = merge_lora(cfg, log=None)
    processor = AutoProcessor.from_pretrained(merged)
    model = AutoModelForImageTextToText.from_pretrained(merged)
    msgs = [dict(role='user', content=[dict(type='image'), dict(type='text', text=q)])]
    x = processor(
        text=[processor.apply_chat_template(msgs, add_generation_prompt=True)], images=[im], return_tensors='pt'
    )
    with torch.no_grad():
        out = model.generate(**x, max_new_tokens=12, do_sample=False)
    assert processor.decode(out[0, x['input_ids'].shape[1] :], skip_special_tokens=True).strip() == reply.strip()
    assert reply.startswith('I see a'), reply
    from ftkit.infer import generate, load_for_inference

    model, tok = load_for_inference(cfg)  # a run trained elsewhere: base + adapter + the run folder's processor
    assert generate(model, tok, q, image=im, max_new_tokens=12).strip() == reply.strip()
    w = res.chat(image=im, max_new_tokens=12)
    assert w.send(q).strip() == reply.strip() and "<img src='data:image/png" in w.log.value


VISION_EXAMPLES = sorted(f for f in EXAMPLES.glob('*.y*ml') if 'processor_type' in f.read_text())


def test_vision_examples_validate():
    "Axolotl's vision examples validate: `processor_type`, `freeze_mm_modules` and image datasets are understood."
    from ftkit.errors import ConfigError

    ok, refused = [], {}
    for f in VISION_EXAMPLES:
        try:
            load_config(f, warn=False)
            ok.append(f.name)
        except ConfigError as e:
            refused[f.name] = e.problems
    print(f"\n{len(VISION_EXAMPLES)} vision examples: {len(ok)} validate; refused: {refused}")
    assert len(VISION_EXAMPLES) == 17 and len(ok) >= 13, refused
    for problems in refused.values():  # what is left is mistral-common tokenizers (Pixtral/Magistral/Voxtral)
        assert all('tokenizer_use_mistral_common' in p for p in problems), problems
