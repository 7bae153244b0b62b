"""Runs that die, files that are broken, configs that name the wrong thing: the right result or
a clear error, and nothing already written lost.

The runs are real subprocesses of tools/train.py and tools/test.py on generated toy data,
killed with SIGKILL where the issue says so.
"""
import os
import re
import shutil
import signal
import subprocess
import textwrap
import time

import pytest
import torch

from conftest import PY, ROOT, TOY, last_checkpoint, mim_file, run
from pvt_mm.run.fileio import atomic_write
from pvt_mm.run.config import ConfigError, load_config

RETINANET = os.path.join(TOY, 'retinanet_pvt_t_toy.py')

# Real tool runs as subprocesses: minutes in all; `make test-quick` leaves them out.
pytestmark = pytest.mark.slow


def load(path):
    from mmengine.runner.checkpoint import _load_checkpoint
    return _load_checkpoint(str(path), map_location='cpu')


def wait_for(path, proc, timeout=600):
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, f'the run ended before {path.name} appeared'
        assert time.time() < deadline, f'no {path.name} after {timeout} s'
        time.sleep(0.05)


def kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def train_args(work, data, *options):
    return [PY, 'tools/train.py', RETINANET, '--work-dir', str(work),
            '--data-root', str(data / 'coco') + '/', '--cfg-options', *options]


# ---------------------------------------------------------------- atomic writes

def test_atomic_write_that_fails_leaves_the_old_file(tmp_path):
    target = tmp_path / 'ckpt.pth'
    target.write_bytes(b'old complete checkpoint')
    with pytest.raises(TypeError):
        atomic_write(target, 'not bytes')  # fails inside the write
    assert target.read_bytes() == b'old complete checkpoint'
    assert sorted(os.listdir(tmp_path)) == ['ckpt.pth']  # the temporary file is cleaned up
    atomic_write(target, b'new')
    assert target.read_bytes() == b'new'


STALL_SAVE = '''
import os, time
_fsync = os.fsync
def fsync(fd):
    name = os.readlink(f'/proc/self/fd/{fd}')
    if name.endswith(os.environ['STALL_ON']):
        open(os.environ['STALL_MARK'], 'w').close()
        time.sleep(3600)
    _fsync(fd)
os.fsync = fsync
'''


def stalling_env(tmp_path, suffix):
    """A sitecustomize that parks the process inside the write of a file ending in ``suffix``."""
    site = tmp_path / 'site'
    site.mkdir()
    (site / 'sitecustomize.py').write_text(STALL_SAVE)
    return {**os.environ, 'PYTHONPATH': f'{site}{os.pathsep}{ROOT}', 'STALL_ON': suffix,
            'STALL_MARK': str(tmp_path / 'stalled')}


def test_atomic_write_killed_midway_leaves_the_old_file(tmp_path):
    target = tmp_path / 'model.pth'
    target.write_bytes(b'old complete checkpoint')
    code = f'from pvt_mm.run.fileio import atomic_write; atomic_write({str(target)!r}, b"x" * 10**7)'
    proc = subprocess.Popen([PY, '-c', code], cwd=ROOT, env=stalling_env(tmp_path, '.partial'))
    wait_for(tmp_path / 'stalled', proc, timeout=120)
    kill(proc)
    assert target.read_bytes() == b'old complete checkpoint'
    assert (tmp_path / '.model.pth.partial').stat().st_size == 10**7  # written, never renamed


def test_kill_while_saving_a_checkpoint_leaves_the_previous_one_usable(tmp_path, mini_data):
    """max_keep_ckpts=1: mmengine's own hook deletes epoch_1.pth before writing epoch_2.pth,
    so a kill in between would leave nothing to resume from. Ours removes it only after."""
    work = tmp_path / 'work'
    args = train_args(work, mini_data, 'train_cfg.max_epochs=2', 'train_cfg.val_interval=2',
                      'default_hooks.checkpoint.max_keep_ckpts=1')
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=stalling_env(tmp_path, 'epoch_2.pth.partial'))
    wait_for(tmp_path / 'stalled', proc)
    kill(proc)
    assert not (work / 'epoch_2.pth').exists()
    assert last_checkpoint(work) == str(work / 'epoch_1.pth')
    ckpt = load(work / 'epoch_1.pth')  # complete and loadable
    assert ckpt['meta']['epoch'] == 1 and 'optimizer' in ckpt
    out = run(args + ['--resume'])
    assert re.search(r'resumed epoch: 1, iter: 2', out), out[-3000:]
    assert load(work / 'epoch_2.pth')['meta']['epoch'] == 2
    assert not (work / 'epoch_1.pth').exists()  # pruned once epoch_2.pth was in place


# ---------------------------------------------------------------- interrupted training

def test_resume_after_sigkill_equals_the_uninterrupted_run(tmp_path, mini_data):
    """Kill after the first checkpoint, --resume: training continues from that iteration
    with the saved optimizer and scheduler, and ends with the uninterrupted run's weights.

    The run is parked inside the write of epoch_2.pth before it is killed, so the kill
    lands after epoch 1's checkpoint and before any later one, however fast the machine."""
    options = ['train_cfg.max_epochs=3', 'train_cfg.val_interval=3',
               'randomness.deterministic=True']
    whole = tmp_path / 'whole'
    run(train_args(whole, mini_data, *options))

    work = tmp_path / 'work'
    args = train_args(work, mini_data, *options)
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=stalling_env(tmp_path, 'epoch_2.pth.partial'))
    wait_for(tmp_path / 'stalled', proc)
    kill(proc)
    assert last_checkpoint(work) == str(work / 'epoch_1.pth')
    assert not (work / 'epoch_2.pth').exists() and not (work / 'epoch_3.pth').exists()
    saved = load(work / 'epoch_1.pth')
    out = run(args + ['--resume'])
    assert re.search(r'resumed epoch: 1, iter: 2', out), out[-3000:]
    assert re.search(r'Epoch\(train\)\s+\[2\]', out)
    assert not re.search(r'Epoch\(train\)\s+\[1\]', out)
    # The learning rate the resumed run logs continues the saved warm-up schedule.
    lr_saved = saved['optimizer']['param_groups'][0]['lr']
    assert saved['param_schedulers'][0]['last_step'] == 2
    assert float(re.search(r'Epoch\(train\)\s+\[2\]\[2/2\]\s+lr: (\S+)', out)[1]) > lr_saved

    resumed, uninterrupted = load(work / 'epoch_3.pth'), load(whole / 'epoch_3.pth')
    assert resumed['meta']['epoch'] == 3 and resumed['meta']['iter'] == 6
    assert resumed['state_dict'].keys() == uninterrupted['state_dict'].keys()
    for key, value in uninterrupted['state_dict'].items():
        assert torch.equal(resumed['state_dict'][key], value), key
    moments = [(s['exp_avg'], s['exp_avg_sq']) for s in
               (resumed['optimizer']['state'][0], uninterrupted['optimizer']['state'][0])]
    assert all(torch.equal(a, b) for a, b in zip(*moments))


def test_nan_loss_stops_training_naming_the_iteration(tmp_path, mini_data):
    """Epoch 1 trains normally; the learning rate then jumps by 1e30 and the loss turns NaN."""
    work = tmp_path / 'work'
    out = run(train_args(work, mini_data, 'train_cfg.max_epochs=3', 'train_cfg.val_interval=3',
                         'param_scheduler.1.milestones=[1]', 'param_scheduler.1.gamma=1e30'),
              check=False)
    assert 'NonFiniteLossError' in out, out[-3000:]
    # Iteration 3 is the first step at the huge rate; its loss is still finite, the next is not.
    assert re.search(r'The loss is (nan|inf|-inf) at iteration 4 \(epoch 2, batch 2\): '
                     r'loss=\S+, loss_cls=\S+, loss_bbox=', out), out[-3000:]
    assert re.search(r'Epoch\(train\)\s+\[1\]\[2/2\]', out)  # epoch 1 ran and was saved
    assert f'The last checkpoint, {work / "epoch_1.pth"}, was saved before it' in out
    assert not (work / 'epoch_2.pth').exists()  # the garbage weights were not saved
    assert last_checkpoint(work) == str(work / 'epoch_1.pth')
    for value in load(work / 'epoch_1.pth')['state_dict'].values():
        assert torch.isfinite(value.float()).all()
    assert 'Training stopped after' in out and '--resume' in out


# ---------------------------------------------------------------- broken data

@pytest.fixture
def broken_data(tmp_path, mini_data):
    """A copy of the toy set that each test breaks its own way."""
    shutil.copytree(mini_data, tmp_path / 'data')
    return tmp_path / 'data'


@pytest.fixture
def old_work(tmp_path):
    """A work dir holding an earlier run's checkpoint, which a failing run must not touch."""
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'epoch_7.pth').write_bytes(b'an earlier run')
    (work / 'last_checkpoint').write_text(str(work / 'epoch_7.pth'))
    return work


def untouched(work):
    return ((work / 'epoch_7.pth').read_bytes() == b'an earlier run'
            and last_checkpoint(work) == str(work / 'epoch_7.pth')
            and not list(work.glob('epoch_[0-6].pth')))


def test_missing_annotation_file_stops_before_building(broken_data, old_work):
    ann = broken_data / 'coco' / 'annotations' / 'instances_train2017.json'
    ann.unlink()
    out = run(train_args(old_work, broken_data, 'train_cfg.max_epochs=1'), check=False)
    assert 'DatasetNotFoundError' in out
    assert f"ann_file '{ann}' does not exist" in out
    assert untouched(old_work) and sorted(os.listdir(old_work)) == ['epoch_7.pth',
                                                                    'last_checkpoint']


def toy_retinanet_checkpoint(path):
    """A checkpoint that fits the toy RetinaNet (tools/test.py checks it before the data)."""
    from mmengine.registry import DefaultScope
    cfg, task = load_config(RETINANET)
    DefaultScope.get_instance('pvt_mm_test_reliability', scope_name=cfg.default_scope)
    torch.save({'state_dict': task.build_model(cfg).state_dict()}, path)
    return str(path)


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_annotation_naming_missing_images_stops_before_the_first_iteration(
        tool, broken_data, old_work, tmp_path):
    split = 'train' if tool == 'train' else 'val'
    gone = broken_data / 'coco' / f'{split}2017' / f'toy_{split}_00001.jpg'
    gone.unlink()
    empty = broken_data / 'coco' / f'{split}2017' / f'toy_{split}_00002.jpg'
    empty.write_bytes(b'')
    if tool == 'train':
        args = train_args(old_work, broken_data, 'train_cfg.max_epochs=1')
    else:
        args = [PY, 'tools/test.py', RETINANET, toy_retinanet_checkpoint(tmp_path / 'model.pth'),
                '--work-dir', str(old_work), '--data-root', str(broken_data / 'coco') + '/']
    out = run(args, check=False)
    assert 'DatasetNotFoundError' in out, out[-3000:]
    assert f'{tool} dataset (CocoDataset, ' in out and f'instances_{split}2017.json' in out
    assert f'{gone} (missing)' in out and f'{empty} (empty file)' in out
    assert 'Epoch(train)' not in out and 'Epoch(test)' not in out
    assert untouched(old_work)


def test_unreadable_image_stops_training_naming_the_file(broken_data, old_work):
    bad = broken_data / 'coco' / 'train2017' / 'toy_train_00004.jpg'
    bad.write_bytes(os.urandom(3000))  # present, non-empty, not an image
    out = run(train_args(old_work, broken_data, 'train_cfg.max_epochs=1'), check=False)
    assert f'failed to load image: {bad}' in out, out[-3000:]
    assert re.search(r'Training stopped after \d completed iterations by AssertionError: '
                     rf'failed to load image: {re.escape(str(bad))}', out)
    assert untouched(old_work)


# ---------------------------------------------------------------- configs

@pytest.mark.parametrize('name, suggestion', [
    ('PVT', 'pvt_mm.PVT'),             # the scope prefix forgotten
    ('pvt_mm.PVTv1', 'pvt_mm.PVT'),    # a name pvt_mm does not have
    ('PyramidVisionTransformr', 'PyramidVisionTransformer'),
])
def test_unknown_backbone_type_says_what_to_write(name, suggestion):
    with pytest.raises(ConfigError) as info:
        load_config(RETINANET, {'model.backbone.type': name, 'custom_imports': None})
    msg = str(info.value)
    assert f"model.backbone.type={name!r} is not a registered model for mmdet" in msg
    near = msg.split('Did you mean ', 1)[1].split('?', 1)[0]  # the nearest registered names
    assert repr(suggestion) in near.split(', '), msg
    assert "type='pvt_mm.PVT' with arch='tiny', 'small', 'medium', 'large'" in msg
    assert "type='pvt_mm.PVTv2' with arch='b0', 'b1', 'b2', 'b2_li', 'b3', 'b4', 'b5'" in msg
    assert "custom_imports = dict(imports=['pvt_mm']" in msg  # the config had none


@pytest.mark.parametrize('key, value', [('std', [58.4, 0.0, 57.4]), ('mean', [float('nan')] * 3)])
def test_normalization_that_makes_the_input_non_finite_is_refused_on_the_host(key, value):
    """The backbone reads no input value on a GPU; the one source of non-finite inputs in a
    run, the data preprocessor's constants, is checked when the config is read."""
    with pytest.raises(ConfigError, match=rf'model.data_preprocessor.{key}=.*non-finite'):
        load_config(RETINANET, {f'model.data_preprocessor.{key}': value})


def test_unknown_backbone_stops_the_train_tool_before_the_work_dir(tmp_path):
    out = run([PY, 'tools/train.py', RETINANET, '--work-dir', str(tmp_path / 'w'),
               '--cfg-options', 'model.backbone.type=PVTT'], check=False)
    assert "ConfigError: model.backbone.type='PVTT' is not a registered model" in out
    assert "Did you mean 'pvt_mm.PVT'" in out
    assert not (tmp_path / 'w').exists()


def test_config_without_custom_imports_still_finds_pvt_mm(tmp_path, mini_data):
    """mmdet's own tools/train.py, a downstream config with type='pvt_mm.PVT' and no
    custom_imports: mmengine imports pvt_mm from the scope prefix, so it trains."""
    train_py = mim_file('mmdet', 'tools', 'train.py')
    cfg = tmp_path / 'no_imports.py'
    cfg.write_text(textwrap.dedent(f'''
        _base_ = ['{RETINANET}']
        custom_imports = None
        train_cfg = dict(max_epochs=1, val_interval=1)
        model = dict(test_cfg=dict(score_thr=0.0))
    '''))
    out = run([PY, train_py, str(cfg), '--work-dir', str(tmp_path / 'w'), '--cfg-options',
               f'train_dataloader.dataset.data_root={mini_data / "coco"}/',
               f'val_dataloader.dataset.data_root={mini_data / "coco"}/',
               f'val_evaluator.ann_file={mini_data / "coco"}/annotations/instances_val2017.json'],
              env={'PYTHONPATH': ROOT})
    assert re.search(r'Epoch\(train\)\s+\[1\]\[2/2\]', out), out[-3000:]
    assert 'DataFilesHook' in out  # pvt_mm's hooks resolved from the scope prefix too
    assert (tmp_path / 'w' / 'epoch_1.pth').exists()


# ---------------------------------------------------------------- stops the user causes

def test_ctrl_c_says_where_training_stopped_and_what_resume_uses(tmp_path, mini_data):
    work = tmp_path / 'work'
    # A shell that starts a command in the background makes it ignore SIGINT, and Python
    # then installs no KeyboardInterrupt handler: give the run the terminal's default.
    # The run is parked inside the write of epoch_2.pth, so Ctrl-C lands at a known point:
    # epoch 1's checkpoint complete and recorded, epoch 2's being written.
    proc = subprocess.Popen(train_args(work, mini_data, 'train_cfg.max_epochs=3'), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=stalling_env(tmp_path, 'epoch_2.pth.partial'),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for(tmp_path / 'stalled', proc)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, out[-3000:]
    assert re.search(r'Training interrupted \(Ctrl-C\) after 4 completed iterations', out), \
        out[-3000:]
    assert last_checkpoint(work) == str(work / 'epoch_1.pth')
    assert f'The last checkpoint is {work / "epoch_1.pth"}; continue from it with --resume' \
        in out
    assert 'Traceback' not in out.split('Training interrupted')[-1]


def test_a_run_that_fails_while_building_its_loop_reports_once(tmp_path, mini_data):
    """A class list that matches no annotation leaves the training set empty: the loop cannot
    be built, and the stop report must not fail again on top of that error."""
    out = run(train_args(tmp_path / 'work', mini_data, 'train_cfg.max_epochs=1',
                         "train_dataloader.dataset.metainfo.classes=['hexagon']"), check=False)
    assert 'Training stopped after 0 completed iterations by' in out, out[-3000:]
    assert 'During handling of the above exception' not in out
    assert 'No checkpoint was saved in this run.' in out
