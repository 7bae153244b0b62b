"""The analysis tools: the FLOP counter reproduces the paper's cost tables; the benchmark runs on
a tiny size and produces every field it promises (timings themselves are not asserted)."""
import json
import subprocess
import sys
import os.path as osp

import pytest
import torch

from conftest import ROOT, TOY, load_tool
from pvt_mm.run.analysis import sweep_plot
from pvt_mm.run.analysis.activation_memory import SavedTensorBytes
from pvt_mm.run.analysis.flops import count_classifier, count_config, count_macs

benchmark = load_tool('tools/analysis/benchmark.py')
get_flops = load_tool('tools/analysis/get_flops.py')


def rel(a, b):
    return abs(a - b) / b


@pytest.mark.parametrize('arch, paper', [('tiny', 1.9), ('small', 3.8), ('medium', 6.7),
                                         ('large', 9.8)])
def test_table2_gflops(arch, paper):
    result = count_classifier(arch, (224, 224))
    assert round(result['gmacs'], 1) == paper, result['gmacs']
    assert 'scaled_dot_product' in ' '.join(result['per_op_gmacs'])  # attention counted


# The v2 paper's Table 1 / the official README, GFLOPs at 224.
PVT_V2_GFLOPS = dict(b0=0.6, b1=2.1, b2=4.0, b2_li=3.9, b3=6.9, b4=10.1, b5=11.8)


@pytest.mark.parametrize('arch', sorted(PVT_V2_GFLOPS))
def test_pvt_v2_gflops_as_the_official_counter_counts(arch):
    """The official get_flops.py's rule (mmcv 1.x's module counter plus the attention
    products) at the paper's printed precision, within 0.05; the multiply-adds alone a
    little under it (b5: 11.72, its norms and conv biases 0.03 more)."""
    result = get_flops.main(['--arch', arch, '--json'])
    paper = PVT_V2_GFLOPS[arch]
    assert abs(result['official_gflops'] - paper) <= 0.05, result['official_gflops']
    assert round(result['official_gflops'], 1) == paper
    assert 0 < result['official_gflops'] - result['gmacs'] < 0.01 * paper
    assert result['model'].startswith('PVTv2-')


def test_fused_attention_is_counted_like_the_explicit_path():
    from pvt_mm import PVT
    model = PVT('tiny').eval()
    x = torch.randn(1, 3, 160, 224)
    with torch.no_grad():
        fused, _ = count_macs(lambda: model(x))
        model.fused_attn = False
        explicit, per_op = count_macs(lambda: model(x))
    assert fused == explicit and per_op['bmm'] > 0
    # Forward + backward counts the attention backward too (about twice the forward).
    model.fused_attn = True
    total, per_op = count_macs(lambda: sum(o.sum() for o in model(x)).backward())
    assert per_op['_scaled_dot_product_flash_attention_for_cpu_backward'] > 0
    assert total > 2.5 * fused


@pytest.mark.parametrize('size, paper', [('t', 33.2), ('s', 44.5), ('m', 61.0), ('l', 79.6)])
def test_table5_semantic_fpn_gflops(size, paper):
    path = osp.join(ROOT, 'configs', 'segmentation', f'fpn_pvt_{size}_ade20k_40k.py')
    assert rel(count_config(path, (512, 512))['gmacs'], paper) < 0.02


@pytest.mark.parametrize('shape, paper', [pytest.param((800, 1280), 285.8, marks=pytest.mark.slow),
                                         ((640, 960), 157.2)])
def test_table10_retinanet_small_gflops(shape, paper):
    """Table 10's figures reproduce at 1280x800 (mmdet's old get_flops default) and 960x640,
    not at COCO's 1333/1066 caps (297.8 and 176.1 there); see docs/speed.md."""
    path = osp.join(ROOT, 'configs', 'detection', 'retinanet_pvt_s_fpn_1x_coco.py')
    assert rel(count_config(path, shape)['gmacs'], paper) < 0.02


FIELDS = {'mode', 'pvt_mm_s', 'time_ratio', 'pvt_mm_peak_mb', 'memory_ratio', 'gmacs',
          'pvt_mm_gflops', 'matmul_gflops', 'rate_fraction', 'matmul_gflops_same_time',
          'rate_fraction_same_time', 'max_abs_diff', 'outputs_match', 'all_times_s'}
PEER_FIELDS = ['{}_s', '{}_peak_mb', 'time_ratio_{}', 'memory_ratio_{}', 'max_abs_diff_{}']
SAVED_FIELDS = {'pvt_mm_saved_mb', 'saved_ratio', 'pvt_mm_saved_backbone_mb',
                'backbone_saved_ratio', 'pvt_mm_saved_mb_cpu_path', 'pvt_mm_gpu_train_estimate_mb'}
PEER_SAVED_FIELDS = ['{}_saved_mb', '{}_saved_backbone_mb', 'saved_ratio_{}',
                     'backbone_saved_ratio_{}', '{}_gpu_train_estimate_mb']


def fields(record, train=False):
    peers = record['peers']
    return (SAVED_FIELDS if train else FIELDS) | {
        f.format(p) for p in peers for f in (PEER_SAVED_FIELDS if train else PEER_FIELDS)}


@pytest.mark.parametrize('what, peers', [
    (['--arch', 'tiny'], ['mmdet']),
    (['--arch', 'b0'], ['timm', 'mmdet']),  # PVTv2: timm's pvt_v2_b0 first, the strongest
    (['--config', osp.join(ROOT, 'configs', 'toy', 'retinanet_pvt_t_toy.py')], ['mmdet']),
    (['--config', osp.join(ROOT, 'configs', 'toy', 'fpn_pvt_t_toy.py')], ['mmdet']),
])
@pytest.mark.slow
def test_benchmark_produces_its_record(tmp_path, what, peers):
    out = tmp_path / 'bench.json'
    benchmark.main([*what, '--shape', '64', '96', '--repeat', '2', '--warmup', '1',
                    '--out', str(out)])
    record = json.loads(out.read_text())
    assert record['device'] == 'cpu' and record['shape'] == [64, 96] and record['machine']
    assert record['peers'] == peers
    assert [r['mode'] for r in record['rows']] == ['infer', 'train']
    for row in record['rows']:
        assert fields(record) <= set(row)
        assert row['outputs_match'] and row['max_abs_diff'] < 5e-3
        assert row['pvt_mm_s'] > 0 and row['gmacs'] > 0
        assert row['time_ratio'] == row[f'time_ratio_{peers[0]}']
        for peer in peers:
            assert row[f'{peer}_s'] > 0 and len(row['all_times_s'][peer]) == 2
            assert row[f'time_ratio_{peer}'] == row['pvt_mm_s'] / row[f'{peer}_s']
        assert row['matmul_gflops'] > 0
        assert row['matmul_gflops_same_time'] > 0
    train = record['rows'][1]
    assert fields(record, train=True) <= set(train)
    assert 0 < train['pvt_mm_saved_backbone_mb'] <= train['pvt_mm_saved_mb']
    if what[0] == '--arch':
        assert train['pvt_mm_saved_backbone_mb'] == train['pvt_mm_saved_mb']


@pytest.mark.slow
def test_benchmark_races_b2_li_against_timm_alone(capsys):
    """mmdet's PyramidVisionTransformerV2 has no linear SRA: b2-li races timm's alone, and a
    detector config cannot swap in mmdet's backbone for it (the message says why)."""
    record = benchmark.main(['--arch', 'b2_li', '--shape', '64', '64', '--repeat', '1',
                             '--warmup', '0', '--modes', 'infer'])
    assert record['peers'] == ['timm'] and record['rows'][0]['outputs_match']
    from pvt_mm.run.analysis.benchmark import mmdet_backbone_cfg
    from pvt_mm.network.arch import resolve_arch_v2
    with pytest.raises(SystemExit, match='no linear SRA'):
        mmdet_backbone_cfg(resolve_arch_v2('b2_li'))


@pytest.mark.slow
def test_benchmark_races_only_the_peers_named():
    """--peers leaves the other peers out of the race (a 1344x1344 race with mmdet's
    PVTv2 beside timm's needs more than a 24 GB machine), passes on to the sweep's and the
    allocators' processes, and refuses a peer the race does not have, naming those it has."""
    record = benchmark.main(['--arch', 'b0', '--shape', '64', '64', '--repeat', '1',
                             '--warmup', '0', '--modes', 'infer', '--peers', 'timm'])
    assert record['peers'] == ['timm'] and record['rows'][0]['outputs_match']
    assert not any(k.startswith('mmdet') or k.endswith('_mmdet') for k in record['rows'][0])
    from pvt_mm.run.analysis.benchmark import _common_flags
    flags = _common_flags(benchmark.parse_args(['--arch', 'b0', '--peers', 'mmdet']))
    assert flags[flags.index('--peers') + 1:][:1] == ['mmdet']
    with pytest.raises(SystemExit, match="--peers timm: this race's peers are mmdet"):
        benchmark.main(['--arch', 'tiny', '--shape', '64', '64', '--repeat', '1',
                        '--modes', 'infer', '--peers', 'timm'])


@pytest.mark.slow
def test_benchmark_sweep_writes_record_and_plot(tmp_path):
    out = tmp_path / 'sweep.json'
    benchmark.main(['--arch', 'tiny', '--sweep', '--sweep-shapes', '64', '64', '--sweep-shapes',
                    '96', '128', '--repeat', '1', '--warmup', '0', '--out', str(out)])
    record = json.loads(out.read_text())
    assert [r['shape'] for r in record['runs']] == [[64, 64], [96, 128]]
    assert all(fields(record, train=True) <= set(r['rows'][1]) for r in record['runs'])
    from PIL import Image
    with Image.open(tmp_path / 'sweep.png') as img:
        assert img.format == 'PNG' and img.size[0] > 1000  # two panels: time, memory
    assert abs(sweep_plot.growth_exponent([1, 10, 100], [3, 30, 300]) - 1.0) < 1e-12
    assert abs(sweep_plot.growth_exponent([1, 4, 16], [2, 4, 8]) - 0.5) < 1e-12


def test_saved_tensor_bytes_counts_a_hand_computed_case(monkeypatch):
    """Linear(8, 32), GELU, Linear(32, 8) on 10 tokens: autograd keeps fc1's input (10 x 8),
    GELU's input and fc2's input (10 x 32 each), 4 bytes a value, parameters not counted;
    pvt_mm's MlpFunction keeps fc1's input and GELU's input only. A second view of a storage
    is not counted again; a section gets what is saved inside it."""
    import pvt_mm.network.cpu_fast_paths as fast
    import pvt_mm.network.lean_backward as lean
    from pvt_mm.network.pvt import Mlp
    mlp = Mlp(8, 32).eval()
    x = torch.randn(2, 5, 8, requires_grad=True)
    with SavedTensorBytes(mlp, {'fc2': mlp.fc2}) as count:
        mlp(x)
    assert count.total == (10 * 8 + 2 * 10 * 32) * 4
    assert dict(count.by_section) == {'other': (10 * 8 + 10 * 32) * 4, 'fc2': 10 * 32 * 4}
    monkeypatch.setattr(fast, 'MLP_REUSE_MIN_BYTES', 0)
    with SavedTensorBytes(mlp) as count:
        lean.mlp(mlp, x, min_bytes=fast.MLP_REUSE_MIN_BYTES)
    assert count.total == (10 * 8 + 10 * 32) * 4
    with SavedTensorBytes(mlp) as count:
        (x * x[:, :1]).sum()  # x saved twice (two views), x[:, :1] is x's storage: one count
    assert count.total == 10 * 8 * 4


def test_get_flops_command_line(capsys):
    get_flops.main(['--arch', 'tiny'])
    out = capsys.readouterr().out
    assert 'GFLOPs: 1.9' in out and 'Params: 13.23 M' in out and '1 multiply-add = 1 FLOP' in out


def test_plot_curves_draws_losses_and_metrics(tmp_path, capsys):
    plot_curves = load_tool('tools/analysis/plot_curves.py')
    lines = [dict(lr=1e-4, loss=2.0 - 0.1 * i, loss_cls=1.0, iter=5 * i, epoch=1, step=5 * i)
             for i in range(1, 6)] + [{'coco/bbox_mAP': 0.4, 'coco/bbox_mAP_s': -1.0, 'step': 1}]
    for stamp, records in (('20260101_000000', lines), ('20260101_000100', lines[-1:])):
        folder = tmp_path / 'work' / stamp / 'vis_data'
        folder.mkdir(parents=True)
        (folder / 'scalars.json').write_text('\n'.join(json.dumps(r) for r in records))
    out = tmp_path / 'curve.png'
    plot_curves.main([str(tmp_path / 'work'), '--out', str(out)])
    # The later folder is a test run (metrics only): the training run's curves are drawn.
    printed = capsys.readouterr().out
    assert 'loss, loss_cls, coco/bbox_mAP from' in printed and '20260101_000000' in printed
    from PIL import Image
    with Image.open(out) as img:
        assert img.format == 'PNG' and img.size == (1280, 420)
    with pytest.raises(KeyError, match="not logged in this run: \\['acc'\\]"):
        plot_curves.main([str(tmp_path / 'work'), '--out', str(out), '--keys', 'acc'])
    with pytest.raises(FileNotFoundError, match='with training losses'):
        plot_curves.main([str(tmp_path), '--out', str(out)])


@pytest.mark.parametrize('groups', [1, 4, 64])
def test_a_convolutions_backward_counts_twice_its_forward_grouped_or_not(groups):
    """The input's gradient and the weight's each take the forward's multiply-adds; torch's
    own formula counts a grouped weight gradient `groups` times (PVTv2's depth-wise convs)."""
    conv = torch.nn.Conv2d(64, 64, 3, padding=1, groups=groups)
    x = torch.randn(2, 64, 10, 12, requires_grad=True)
    forward = count_macs(lambda: conv(x))[0]
    assert forward == 64 * (64 // groups) * 9 * 2 * 10 * 12  # out x in/groups x k^2 x B x H x W
    _, per_op = count_macs(lambda: conv(x).sum().backward())
    assert per_op['convolution_backward'] == 2 * forward


@pytest.mark.slow
def test_runtime_speed_times_every_part_in_every_runtime(tmp_path, capsys, toy_data):
    """tools/analysis/runtime_speed.py on the toy RetinaNet (random weights, classification
    biases at 0 so that NMS has work): each part in PyTorch, onnxruntime and OpenVINO f32 /
    bf16 / int8 (calibrated on the toy images), the same detections end to end in f32, and
    the record on disk."""
    out = tmp_path / 'record.json'
    load_tool('tools/analysis/runtime_speed.py').main([
        osp.join(TOY, 'retinanet_pvt_t_toy.py'), '--shape', '256', '256', '--repeat', '1',
        '--cls-bias', '0', '--out', str(out),
        '--calib-dir', str(toy_data / 'coco' / 'val2017')])
    record = json.load(open(out))
    assert list(record['parts']) == ['backbone', 'raw', 'end2end']
    for part, row in record['parts'].items():
        for runtime in ('onnxruntime', 'openvino_f32', 'openvino_bf16', 'openvino_int8'):
            assert row[f'{runtime}_s'] > 0 and row[f'{runtime}_ratio'] > 0, (part, runtime)
        # f32 runtimes agree with PyTorch to rounding (outputs of magnitude ~10 here).
        for runtime in ('onnxruntime', 'openvino_f32'):
            assert row[f'{runtime}_max_abs_diff'] < 1e-3 * max(1, row['max_abs_output']), row
    e2e = record['parts']['end2end']
    assert e2e['pytorch_detections'] == e2e['onnxruntime_detections'] == \
        e2e['openvino_f32_detections'] == 100
    assert not e2e['onnxruntime_label_mismatch'] and not e2e['openvino_f32_label_mismatch']
    assert '| end2end |' in capsys.readouterr().out


KEEP_CHECK = r'''
import ctypes, sys
import torch
from pvt_mm.run.allocator import keep_freed_memory
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ('arena', 'ordblks', 'smblks', 'hblks', 'hblkhd',
                'usmblks', 'fsmblks', 'uordblks', 'fordblks', 'keepcost')]
libc = ctypes.CDLL('libc.so.6')
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == 'keep':
    print(keep_freed_memory())
before = libc.mallinfo2()
t = torch.ones(64 << 20, dtype=torch.uint8)  # 64 MiB, above glibc's mmap threshold
during = libc.mallinfo2()
del t
after = libc.mallinfo2()
print('mapped', during.hblkhd - before.hblkhd, 'heap_used', during.uordblks - before.uordblks,
      'heap_returned', during.arena - after.arena)
'''


@pytest.mark.slow
def test_keep_freed_memory_serves_large_tensors_from_the_heap_and_keeps_them():
    """glibc's default maps a 64 MiB tensor on its own (mmap) and unmaps it when freed, so
    each one pays fresh pages; with freed memory kept it comes from the heap, which keeps the
    pages when it is freed (glibc's own accounting, mallinfo2: bytes mapped apart, bytes in
    use on the heap, heap bytes given back; the heap's growth alone is not the measure, since
    a free chunk already at its top serves part of the tensor)."""
    seen = {}
    for setting in ('glibc', 'keep'):
        proc = subprocess.run([sys.executable, '-c', KEEP_CHECK, setting], capture_output=True,
                              text=True, cwd=ROOT, check=True)
        words = proc.stdout.split()
        seen[setting] = tuple(int(words[words.index(k) + 1])
                              for k in ('mapped', 'heap_used', 'heap_returned'))
        assert ('keeps freed memory' in proc.stdout) == (setting == 'keep')
    mapped, used, _ = seen['glibc']
    assert mapped >= 64 << 20 and used < 64 << 20, seen
    mapped, used, returned = seen['keep']
    assert mapped == 0 and used >= 64 << 20 and returned == 0, seen


@pytest.mark.slow
def test_benchmark_records_both_allocators_side_by_side(tmp_path, capsys):
    out = tmp_path / 'both.json'
    benchmark.main(['--arch', 'tiny', '--shape', '64', '64', '--repeat', '1', '--warmup', '0',
                    '--modes', 'infer', '--allocator', 'both', '--out', str(out)])
    record = json.loads(out.read_text())
    assert record['allocator'] == 'both' and set(record['allocators']) == {'glibc', 'keep'}
    for name, run_ in record['allocators'].items():
        assert run_['allocator'] == name and run_['rows'][0]['outputs_match']
    assert capsys.readouterr().out.count('allocator: ') >= 2
    with pytest.raises(SystemExit, match='one allocator'):
        benchmark.main(['--arch', 'tiny', '--sweep', '--allocator', 'both'])
