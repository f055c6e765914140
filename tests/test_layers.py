"""The layers of DESIGN §2 hold, checked from the package's own imports (module level and inside functions):

    ui (magics, inspector, chat)  ->  entry (cli)  ->  launch  ->  core  ->  support (errors)

A module imports only from its own layer or the layers below it, and the modules of ftkit import each other
without cycles, so each one can be read (and tested) on top of the ones it uses."""

import ast, shutil
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / 'ftkit'
LAYERS = {'magics': 'ui', 'inspector': 'ui', 'chat': 'ui', 'cli': 'entry', 'launch': 'launch', 'errors': 'support'}
ORDER = ['support', 'core', 'launch', 'entry', 'ui']


def layer(mod):
    return LAYERS.get(mod.split('.')[0], 'core')


def module_name(root, path):
    return '.'.join(p for p in path.relative_to(root).with_suffix('').parts if p != '__init__')


def imports(root, path):
    "The ftkit modules that the file `path` of the package at `root` imports, anywhere in it."
    me = module_name(root, path)
    pkg = me if path.name == '__init__.py' else me.rpartition('.')[0]

    def is_module(name):
        return (root / Path(*name.split('.'))).with_suffix('.py').exists() or (root / Path(*name.split('.'))).is_dir()

    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name.removeprefix('ftkit.') for a in node.names if a.name.startswith('ftkit.')}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = pkg.split('.') if pkg else []
                base = parts[: len(parts) - node.level + 1]
                mod = '.'.join(base + ([node.module] if node.module else []))
            elif (node.module or '').startswith('ftkit.'):
                mod = node.module.removeprefix('ftkit.')
            elif node.module == 'ftkit':
                mod = ''
            else:
                continue
            for a in node.names:
                sub = f"{mod}.{a.name}" if mod else a.name
                out.add(sub if is_module(sub) else mod)
    return {m for m in out if m and m != me}


def graph(root):
    "`{module: modules it imports}` for the package at `root` (its `__init__` is the public facade, above every layer)."
    files = [p for p in root.rglob('*.py') if p.name != '_modidx.py' and p != root / '__init__.py']
    mods = {module_name(root, p): p for p in files}
    return {m: {d for d in imports(root, p) if d in mods} for m, p in mods.items()}


def violations(g):
    return [
        f"{m} ({layer(m)}) imports {d} ({layer(d)})"
        for m, deps in g.items()
        for d in sorted(deps)
        if ORDER.index(layer(d)) > ORDER.index(layer(m))
    ]


def cycles(g):
    seen, stack, found = set(), [], []

    def visit(m):
        if m in stack:
            found.append(stack[stack.index(m) :] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for d in sorted(g[m]):
            visit(d)
        stack.pop()

    for m in sorted(g):
        visit(m)
    return found


def test_every_module_is_seen():
    g = graph(PKG)
    assert {
        'config',
        'data',
        'training',
        'launch',
        'cli',
        'magics',
        'methods',
        'methods.sft',
        'distributed',
        'templates',
    } <= set(g)
    assert 'methods' in g['training'] and 'data' in g['methods.sft']  # imports inside functions are read too


def test_layers_hold():
    assert not violations(graph(PKG))


def test_no_import_cycles():
    assert not cycles(graph(PKG))


def test_the_checks_go_red(tmp_path):
    "An upward import inside a function body (what the old training module did) and a data <-> model loop are both caught."
    root = tmp_path / 'ftkit'
    shutil.copytree(PKG, root, ignore=shutil.ignore_patterns('__pycache__'))
    with open(root / 'training.py', 'a') as f:
        f.write("\ndef _open_chat(res):\n    from ftkit.chat import chat\n    return chat(res)\n")
    with open(root / 'data.py', 'a') as f:
        f.write("\ndef _model_for(cfg):\n    from .model import load_model\n    return load_model(cfg)\n")
    g = graph(root)
    assert violations(g) == ['training (core) imports chat (ui)']
    assert any({'data', 'model'} <= set(c) for c in cycles(g)), cycles(g)
