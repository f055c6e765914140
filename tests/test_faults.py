"""Faults during a run lose nothing: kills at random moments (saves included), a second run on the same folder,
resuming with changed settings, a full or read-only disk, a run folder that is a file. Each ends in one clear line
and a non-zero exit, and the run can always go on from its newest complete checkpoint to the same weights as a run
that was never interrupted."""

import json, os, random, signal, subprocess, sys, time
from pathlib import Path
import pytest, yaml
from safetensors.torch import load_file

ENV = {**os.environ, 'HF_HUB_OFFLINE': '1', 'HF_DATASETS_OFFLINE': '1'}


def write_cfg(tmp, name='cfg.yml', **kw):
    c = dict(
        base_model='ftkit:tiny-llama',
        learning_rate=1e-3,
        datasets=[dict(path='ftkit:samples/chat', type='chat_template')],
        sequence_len=128,
        micro_batch_size=4,
        max_steps=8,
        logging_steps=1,
        save_steps=1,
        save_total_limit=3,
        lr_scheduler='constant',
        output_dir=str(tmp / 'run'),
        dataset_prepared_path=str(tmp / 'prep'),
    )
    c.update(kw)
    (tmp / name).write_text(yaml.safe_dump(c))
    return tmp / name


def ftkit(*args, **kw):
    return subprocess.Popen(
        [sys.executable, '-m', 'ftkit.cli', *map(str, args)], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, **kw,
    )


def finished(p, timeout=300):
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


def weights(run):
    return load_file(str(Path(run) / 'model.safetensors'))


def test_kill_9_at_random_moments_resumes_to_the_same_weights(tmp_path):
    "A full fine-tune (large checkpoints: a kill often lands in a save), killed 10 times, then run to the end."
    ref = tmp_path / 'ref'
    ref.mkdir()
    rc, out, err = finished(ftkit('train', write_cfg(ref, max_steps=32)))
    assert rc == 0, err
    victim = tmp_path / 'victim'
    victim.mkdir()
    cfg = write_cfg(victim, auto_resume_from_checkpoints=True, max_steps=32)  # room for 10 kills at any speed
    rng, kills = random.Random(0), 0
    while kills < 10:
        p = ftkit('train', cfg)
        metrics = victim / 'run' / 'metrics.jsonl'
        start = metrics.stat().st_size if metrics.exists() else 0
        t = time.time()
        while p.poll() is None and time.time() - t < 120:  # wait until this attempt trains (or finishes)
            if metrics.exists() and metrics.stat().st_size > start:
                break
            time.sleep(0.05)
        time.sleep(rng.uniform(0, 0.5))  # a step with its save takes about 0.2-0.4 s
        if p.poll() is not None:
            break  # it finished before we could kill it
        p.send_signal(signal.SIGKILL)
        p.wait()
        kills += 1
    rc, out, err = finished(ftkit('train', cfg))
    assert rc == 0, err
    assert kills == 10, f"only {kills} kills landed before the run finished"
    again = finished(ftkit('train', cfg))  # resuming a finished run trains nothing more
    assert again[0] == 0 and 'is the end of the run: nothing left to train' in again[1], again
    a, b = weights(ref / 'run'), weights(victim / 'run')
    assert a.keys() == b.keys() and all((a[k] - b[k]).abs().max() < 1e-5 for k in a), "resumed weights differ"


def test_an_unfinished_checkpoint_is_skipped_with_one_line(tmp_path):
    cfg = write_cfg(tmp_path, max_steps=3, auto_resume_from_checkpoints=True)
    assert finished(ftkit('train', cfg))[0] == 0
    last = tmp_path / 'run' / 'checkpoint-3'
    (last / 'ftkit-complete.json').unlink()  # as if killed while saving
    (last / 'optimizer.pt').write_bytes(b'truncated')
    rc, out, err = finished(ftkit('train', write_cfg(tmp_path, max_steps=4, auto_resume_from_checkpoints=True)))
    assert rc == 0, err
    assert "Skipping checkpoint-3: its save did not finish; resuming from" in out and 'checkpoint-2' in out, out


def test_a_second_run_on_the_same_folder_is_refused(tmp_path):
    cfg = write_cfg(tmp_path, max_steps=10_000, save_steps=10_000)
    first = ftkit('train', cfg)
    try:
        t = time.time()
        while not (tmp_path / 'run' / 'metrics.jsonl').exists() and time.time() - t < 120:
            time.sleep(0.2)
        rc, out, err = finished(ftkit('train', cfg))
        assert rc == 1 and f"is in use by another run (pid {first.pid}" in err and 'Traceback' not in err, err
    finally:
        first.kill()
        first.wait()
    assert finished(ftkit('train', write_cfg(tmp_path, max_steps=1)))[0] == 0  # the killed holder left no stale lock


def test_resuming_with_changed_settings_is_refused(tmp_path):
    assert finished(ftkit('train', write_cfg(tmp_path, max_steps=2)))[0] == 0
    cfg = write_cfg(tmp_path, max_steps=4, auto_resume_from_checkpoints=True)
    rc, out, err = finished(ftkit('train', cfg, '--learning_rate=0.01'))
    assert rc == 1 and 'with changed settings (learning_rate: 0.001 -> 0.01)' in err and 'Traceback' not in err, err
    rc, out, err = finished(ftkit('train', cfg))  # a longer run (max_steps) is a change a resumed run may make
    assert rc == 0 and 'Resuming from' in out, err


def test_output_dir_that_is_a_file(tmp_path):
    (tmp_path / 'run').write_text('not a folder')
    rc, out, err = finished(ftkit('train', write_cfg(tmp_path)))
    assert rc == 1 and 'output_dir:' in err and 'is a file' in err and 'Traceback' not in err, err


@pytest.fixture
def small_disk(tmp_path):
    "A 6 MiB file system (a tmpfs mount; these tests run as root, as CI does)."
    d = tmp_path / 'disk'
    d.mkdir()
    r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', str(d)], capture_output=True, text=True)
    assert r.returncode == 0, f"cannot mount a tmpfs for the full-disk test: {r.stderr}"
    yield d
    subprocess.run(['umount', '-l', str(d)])


def test_a_full_disk_keeps_the_earlier_checkpoints(tmp_path, small_disk):
    lora = dict(adapter='lora', lora_target_linear=True)  # about 1 MiB a checkpoint: a few fit, then the disk is full
    cfg = write_cfg(tmp_path, output_dir=str(small_disk / 'run'), save_total_limit=20, max_steps=20, **lora)
    rc, out, err = finished(ftkit('train', cfg))
    assert rc == 1 and 'is full: saving at step' in err and 'are intact' in err and 'Traceback' not in err, err
    from ftkit.files import checkpoints, is_complete

    done = checkpoints(small_disk / 'run', complete=True)
    assert done and all(is_complete(c) for c in done)


def test_a_read_only_output_dir(tmp_path):
    ro = tmp_path / 'ro'
    ro.mkdir()
    r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', str(ro)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    try:
        rc, out, err = finished(ftkit('train', write_cfg(tmp_path, output_dir=str(ro / 'run'))))
        assert rc == 1 and 'is not writable (Read-only file system)' in err and 'Traceback' not in err, err
    finally:
        subprocess.run(['umount', '-l', str(ro)])


def test_saved_weights_are_readable_like_the_rest(tmp_path):
    assert finished(ftkit('train', write_cfg(tmp_path, max_steps=2, adapter='lora', lora_target_linear=True)))[0] == 0
    mask = os.umask(0)
    os.umask(mask)
    for f in (tmp_path / 'run').rglob('*.safetensors'):
        assert f.stat().st_mode & 0o777 == 0o666 & ~mask, f


def test_ctrl_c_exits_130_after_saving(tmp_path):
    "`ftkit train cfg && ftkit merge-lora cfg` must not go on after an interrupted run (SIGTERM's 143: test_training)."
    p = ftkit('train', write_cfg(tmp_path, max_steps=10_000, save_steps=10_000))
    t = time.time()
    metrics = tmp_path / 'run' / 'metrics.jsonl'
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2) and time.time() - t < 120:
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    rc, out, err = finished(p)
    assert rc == 130 and 'Stopped by SIGINT at step' in out and 'Traceback' not in err, (rc, out, err)


def test_a_failed_start_leaves_no_run_folder(tmp_path):
    rc, out, err = finished(ftkit('train', write_cfg(tmp_path, adapter='lora', lora_target_modules=['qproj'])))
    assert rc == 1 and 'lora_target_modules: `qproj` names no module' in err and 'Traceback' not in err, err
    assert not (tmp_path / 'run' / 'config.yaml').exists()


def test_a_killed_build_leaves_no_partial_folder(tmp_path):
    from ftkit.files import atomic_dir

    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    (tmp_path / f'cache.tmp{dead.pid}' / 'data').mkdir(parents=True)  # as a build killed by SIGKILL leaves it
    with atomic_dir(tmp_path / 'cache') as tmp:
        (tmp / 'stats.json').write_text('{}')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['cache']


def test_a_truncated_prepared_cache_is_rebuilt(tmp_path):
    cfg = write_cfg(tmp_path)
    assert finished(ftkit('preprocess', cfg))[0] == 0
    arrow = next((tmp_path / 'prep').rglob('*.arrow'))
    arrow.write_bytes(arrow.read_bytes()[:1000])
    rc, out, err = finished(ftkit('preprocess', cfg))
    assert rc == 0 and 'is damaged (data/train/' in out and 'has 1,000 bytes' in out and 'preparing it again' in out, (out, err)
    rc, out, err = finished(ftkit('preprocess', cfg))
    assert rc == 0 and 'prepared rows from the cache' in out, (out, err)


def test_a_read_only_dataset_prepared_path(tmp_path):
    ro = tmp_path / 'ro'
    ro.mkdir()
    r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', str(ro)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    try:
        rc, out, err = finished(ftkit('preprocess', write_cfg(tmp_path, dataset_prepared_path=str(ro / 'prep'))))
        assert rc == 1 and f'dataset_prepared_path: {ro}/prep is not writable (Read-only file system)' in err, err
        assert 'Traceback' not in err
    finally:
        subprocess.run(['umount', '-l', str(ro)])


def test_a_complete_cache_on_a_read_only_mount_is_used(tmp_path):
    cfg = write_cfg(tmp_path)
    assert finished(ftkit('preprocess', cfg))[0] == 0
    ro = tmp_path / 'ro'
    ro.mkdir()
    r = subprocess.run(['mount', '--bind', str(tmp_path / 'prep'), str(ro)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    try:
        assert subprocess.run(['mount', '-o', 'remount,bind,ro', str(ro)]).returncode == 0
        rc, out, err = finished(ftkit('preprocess', write_cfg(tmp_path, dataset_prepared_path=str(ro))))
        assert rc == 0 and f'prepared rows from the cache {ro}/' in out and 'Traceback' not in err, (out, err)
    finally:
        subprocess.run(['umount', '-l', str(ro)])
