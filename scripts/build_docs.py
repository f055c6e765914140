"""Build the documentation site from the notebooks in nbs/, offline: each notebook is executed in a real Jupyter
kernel and rendered with its outputs; the API reference comes from the module notebooks, the front page from
nbs/index.ipynb.

    python scripts/build_docs.py                 # writes docs/_site/ (open docs/_site/index.html)
    python scripts/build_docs.py --out DIR --no-execute

Cells flagged `#| gpu` or `#| slow` are shown but not run (their code appears with a note); `#| hide` cells run
but are not shown; `#|` directive lines are dropped from the code shown."""

import argparse, copy, html, importlib, inspect, json, re, shutil, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / 'nbs'

CSS = """
body{margin:0;font:15px/1.55 -apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;color:#1d1d1f}
nav{position:fixed;top:0;left:0;bottom:0;width:250px;overflow:auto;background:#f6f7f9;border-right:1px solid #e3e5e8;padding:18px 14px;box-sizing:border-box}
nav h1{font-size:20px;margin:0 0 12px} nav h2{font-size:12px;text-transform:uppercase;color:#666;margin:18px 0 6px;letter-spacing:.04em}
nav a{display:block;color:#1d4ed8;text-decoration:none;padding:2px 0;font-size:14px} nav a.here{font-weight:600;color:#111}
main{margin-left:250px;padding:24px 40px;max-width:1000px}
pre{background:#f4f5f7;padding:10px 12px;border-radius:6px;overflow:auto;font:13px/1.45 ui-monospace,Menlo,Consolas,monospace}
code{font:13px ui-monospace,Menlo,Consolas,monospace;background:#f4f5f7;padding:1px 4px;border-radius:3px} pre code{background:none;padding:0}
.cell-in pre{border-left:3px solid #9db4e0} .cell-out pre{background:#fff;border:1px solid #e5e7eb}
.cell-out{margin:-4px 0 14px} .cell-out img{max-width:100%} .gpu-note{color:#8a4b00;font-size:13px;margin:2px 0}
table{border-collapse:collapse} th,td{border:1px solid #e3e5e8;padding:4px 8px;text-align:left;vertical-align:top}
blockquote{color:#555;border-left:3px solid #ccc;margin:0;padding-left:12px}
.api dt{font:14px ui-monospace,Menlo,monospace;margin-top:12px} .api dd{margin:2px 0 0 16px}
"""


def directives(src):
    return {l[2:].strip().split()[0] for l in src.splitlines() if l.startswith('#|') and l[2:].strip()}


def strip_directives(src):
    return '\n'.join(l for l in src.splitlines() if not l.startswith('#|')).strip('\n')


def title_of(nb, path):
    for c in nb.cells:
        if c.cell_type == 'markdown':
            m = re.search(r'^#\s+(.+)$', c.source, re.M)
            if m:
                return m.group(1).strip()
    return path.stem


def execute(nb, path, timeout=900):
    "Run the notebook in a kernel, skipping #| gpu / #| slow cells (left in place, marked)."
    from nbclient import NotebookClient

    run = copy.deepcopy(nb)
    skipped = []
    for i, c in enumerate(run.cells):
        if c.cell_type == 'code' and directives(c.source) & {'gpu', 'slow', 'eval:'}:
            skipped.append(i)
            c.source = 'pass'
        elif c.cell_type == 'code':
            c.source = strip_directives(c.source) or 'pass'
    NotebookClient(
        run, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}}
    ).execute()
    for i, c in enumerate(run.cells):
        if i in skipped:
            c.outputs = []
        nb.cells[i].outputs = c.get('outputs', []) if c.cell_type == 'code' else []
    return set(skipped)


def render_outputs(outputs):
    parts = []
    for o in outputs:
        t = o.get('output_type')
        if t == 'stream':
            parts.append(f"<pre>{html.escape(o['text'])}</pre>")
        elif t in ('display_data', 'execute_result'):
            d = o.get('data', {})
            if 'text/html' in d:
                parts.append(''.join(d['text/html']) if isinstance(d['text/html'], list) else d['text/html'])
            elif 'image/png' in d:
                parts.append(f"<img src='data:image/png;base64,{d['image/png']}'>")
            elif 'text/plain' in d:
                parts.append(f"<pre>{html.escape(''.join(d['text/plain']))}</pre>")
        elif t == 'error':
            parts.append(f"<pre>{html.escape(o['ename'] + ': ' + o['evalue'])}</pre>")
    return f"<div class='cell-out'>{''.join(parts)}</div>" if parts else ''


def render(nb, skipped, md):
    from pygments import highlight
    from pygments.lexers import PythonLexer
    from pygments.formatters import HtmlFormatter

    out = []
    for i, c in enumerate(nb.cells):
        if c.cell_type == 'markdown':
            src = c.source.replace('](docs/images/', '](images/')  # the README's image paths, from the site's root
            out.append(md.render(src))
            continue
        ds = directives(c.source)
        if 'hide' in ds or 'default_exp' in ds:
            continue
        code = strip_directives(c.source)
        if not code.strip():
            continue
        if code.startswith(
            '%%'
        ):  # a cell magic: its first line, then the body in its own language (YAML for %%finetune)
            from pygments.lexers import YamlLexer

            first, _, body = code.partition('\n')
            shown = f"<div class='hl'><pre>{html.escape(first)}\n{highlight(body, YamlLexer(), HtmlFormatter(nowrap=True))}</pre></div>"
        else:
            shown = highlight(code, PythonLexer(), HtmlFormatter(nowrap=False, cssclass='hl'))
        out.append(f"<div class='cell-in'>{shown}</div>")
        if i in skipped:
            out.append("<div class='gpu-note'>This cell runs on a GPU; it was not run when this page was built.</div>")
        out.append(render_outputs(c.get('outputs', [])))
    return '\n'.join(out)


def api_page(modules):
    "Every exported name of the library, with its signature and docstring, linked to its chapter."
    rows = []
    for mod, page in modules:
        m = importlib.import_module(mod)
        names = getattr(m, '__all__', [])
        if not names:
            continue
        rows.append(f"<h2><a href='{page}'>{mod}</a></h2><dl class='api'>")
        for n in names:
            obj = getattr(m, n, None)
            if obj is None or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            try:
                sig = str(inspect.signature(obj))
            except (TypeError, ValueError):
                sig = ''
            doc = (inspect.getdoc(obj) or '').split('\n\n')[0]
            rows.append(f"<dt>{html.escape(n + sig)}</dt><dd>{html.escape(doc)}</dd>")
        rows.append('</dl>')
    return (
        "<h1>API reference</h1><p>The exported functions and classes of each module; each module's chapter explains them with examples.</p>"
        + ''.join(rows)
    )


def page(title, body, nav):
    from pygments.formatters import HtmlFormatter

    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)} · ftkit</title>"
        f"<style>{CSS}{HtmlFormatter(cssclass='hl').get_style_defs('.hl')}</style></head><body>{nav}<main>{body}</main></body></html>"
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', default=str(ROOT / 'docs' / '_site'))
    ap.add_argument('--no-execute', action='store_true')
    ap.add_argument('--only', help="build only the notebooks whose name contains this")
    a = ap.parse_args()
    import nbformat
    from markdown_it import MarkdownIt

    md = MarkdownIt('commonmark').enable('table')
    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    for sub in ('tutorials', 'methods'):
        (out / sub).mkdir(parents=True)
    if (ROOT / 'docs' / 'images').exists():
        shutil.copytree(ROOT / 'docs' / 'images', out / 'images')
    chapters = sorted(NBS.glob('[0-9]*.ipynb'))
    methods = sorted((NBS / 'methods').glob('*.ipynb'))  # one chapter per training method
    tutorials = sorted((NBS / 'tutorials').glob('*.ipynb'))
    others = [NBS / 'troubleshooting.ipynb']
    pages = (
        [(NBS / 'index.ipynb', 'index.html')]
        + [(p, f"tutorials/{p.stem}.html") for p in tutorials]
        + [(p, f"{p.stem}.html") for p in chapters]
        + [(p, f"methods/{p.stem}.html") for p in methods]
        + [(p, f"{p.stem}.html") for p in others]
    )
    nbs = {p: nbformat.read(p, as_version=4) for p, _ in pages}
    titles = {p: title_of(nbs[p], p).replace('`', '') for p, _ in pages}

    def nav(here):
        up = '../' if '/' in here else ''
        link = lambda p, h: f"<a href='{up}{h}' class='{'here' if h == here else ''}'>{html.escape(titles[p])}</a>"
        return (
            "<nav><h1><a href='" + up + "index.html' style='color:#111;text-decoration:none'>ftkit</a></h1>"
            "<h2>Tutorials</h2>"
            + ''.join(link(p, h) for p, h in pages if h.startswith('tutorials/'))
            + "<h2>Guides</h2>"
            + ''.join(link(p, h) for p, h in pages if p in others)
            + f"<a href='{up}api.html' class='{'here' if here == 'api.html' else ''}'>API reference</a>"
            "<h2>Chapters</h2>"
            + ''.join(link(p, h) for p, h in pages if p in chapters)
            + "<h2>Training methods</h2>"
            + ''.join(link(p, h) for p, h in pages if p in methods)
            + "</nav>"
        )

    t0 = time.time()
    modules = []
    for p, h in pages:
        nb = nbs[p]
        m = next(
            (re.search(r'#\|\s*default_exp\s+(\S+)', c.source) for c in nb.cells if 'default_exp' in c.source), None
        )
        if m:
            modules.append((('ftkit.' + m.group(1)).removesuffix('.__init__'), h))
        skipped = set()
        if not a.no_execute and (not a.only or a.only in p.name):
            t = time.time()
            skipped = execute(nb, p)
            print(f"  executed {p.relative_to(ROOT)} in {time.time() - t:.0f}s", flush=True)
        (out / h).write_text(page(titles[p], render(nb, skipped, md), nav(h)), encoding='utf-8')
    (out / 'api.html').write_text(page('API reference', api_page(modules), nav('api.html')), encoding='utf-8')
    print(f"Built {len(pages) + 1} pages into {out} in {time.time() - t0:.0f}s; open {out / 'index.html'}")


if __name__ == '__main__':
    main()
