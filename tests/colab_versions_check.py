"Colab-like versions: IPython 7.34, ipywidgets 7.7.1. Drive the inspector, the chat, the magics and the live view."

import tempfile, io, contextlib
from pathlib import Path
import IPython, ipywidgets

print('IPython', IPython.__version__, 'ipywidgets', ipywidgets.__version__)
from IPython.testing.globalipapp import start_ipython

ip = start_ipython()
ip.run_line_magic('load_ext', 'ftkit')
d = Path(tempfile.mkdtemp())
ip.user_ns['lr'] = 5e-3
cell = f"base_model: ftkit:tiny-llama\nadapter: lora\nlora_target_linear: true\nlearning_rate: $lr\nmax_steps: 8\nmicro_batch_size: 8\nsave_strategy: 'no'\noutput_dir: {d}/run\ndataset_prepared_path: {d}/prep\ndatasets:\n  - path: ftkit:samples/chat\n    type: chat_template\n"
ip.run_cell_magic('finetune', '--name ft', cell)
ft = ip.user_ns['ft']
assert len(ft.losses) == 8, ft.losses
import ftkit

ins = ftkit.inspect(ft.cfg)
ins.next.click()
assert ins.slider.value == 1 and 'ft-trained' in ins.tokens.value
ins.jump.value = 5
assert ins.slider.value == 5
c = ft.chat(max_new_tokens=8)
r = c.send('What is 2 plus 2?')
assert 'ft-assistant' in c.log.value
from ftkit.magics import LiveView

v = LiveView('x', display=False)
v(dict(step=1, max_steps=2, loss=3.0, learning_rate=1e-3, tokens_per_s=10.0, elapsed_s=1.0))
assert '<svg' in v.html()
print(
    'OK: magics, live view, inspector and chat work with IPython',
    IPython.__version__,
    'and ipywidgets',
    ipywidgets.__version__,
)
