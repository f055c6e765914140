"""Write README.md from nbs/index.ipynb: its markdown cells, in order.

Usage: python scripts/make_readme.py [--check]   (--check exits 1 when README.md is out of date)"""

import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def render(nb_path=ROOT / 'nbs' / 'index.ipynb') -> str:
    cells = json.loads(Path(nb_path).read_text(encoding='utf-8'))['cells']
    parts = []
    for c in cells:
        src = ''.join(c['source']).strip()
        if c['cell_type'] != 'markdown' or not src:
            continue
        lines = src.splitlines()
        # the nbdev title block: "# Title" + "> summary" becomes a heading and a plain lead paragraph
        parts.append('\n'.join(l[2:] if l.startswith('> ') else l for l in lines))
    return (
        '<!-- Generated from nbs/index.ipynb by scripts/make_readme.py: edit the notebook, not this file. -->\n\n'
        + '\n\n'.join(parts)
        + '\n'
    )


if __name__ == '__main__':
    text, readme = render(), ROOT / 'README.md'
    if '--check' in sys.argv:
        ok = readme.exists() and readme.read_text(encoding='utf-8') == text
        print('README.md is up to date' if ok else 'README.md is out of date: run python scripts/make_readme.py')
        sys.exit(0 if ok else 1)
    readme.write_text(text, encoding='utf-8')
