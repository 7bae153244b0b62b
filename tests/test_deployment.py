"""ONNX export (pvt_mm.run.deployment, tools/deployment/): one dynamic graph for every input
size, checked with onnxruntime against PyTorch; whole detectors and segmentors give
tools/test.py's predictions through onnx_infer.py and the upstream heads' post-processing.
"""
import json
import os.path as osp
import pickle
import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from conftest import PY, ROOT, TOY, metrics_of, run
from pvt_mm import PVT
from pvt_mm.run.deployment import (NotExportableError, export_onnx, export_rules,
                                   exportable_part, read_metadata)

# The bar for unit-scale inputs; measured: at most 7e-6 (PVT-Tiny, both paths).
FEATURE_ATOL = 1e-4
# Sizes other than the traced one: not divisible by 32, tall, wide, and one below the range
# torch.export traced (its 64 px) that PVT still accepts (48: F4 is 1x1).
OTHER_SIZES = [(250, 333), (640, 96), (96, 500), (48, 48)]


@pytest.fixture(scope='module', params=['fused', pytest.param('explicit', marks=pytest.mark.slow)])
def exported_backbone(request, tmp_path_factory):
    torch.manual_seed(0)
    model = PVT('tiny', fused_attn=request.param == 'fused')
    model.init_weights()
    model.eval()
    example = torch.randn(1, 3, 224, 224)
    module, part, names, _ = exportable_part(model, None, example=example)
    path = str(tmp_path_factory.mktemp('onnx') / f'pvt_t_{request.param}.onnx')
    info = export_onnx(module, example, path, output_names=names, dynamic=True,
                       metadata={'pvt_mm.part': part})
    return model, path, info


def test_backbone_graph_has_symbolic_height_and_width(exported_backbone):
    _, path, info = exported_backbone
    graph = onnx.load(path).graph
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 'height', 'width']
    out = [[d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]
           for o in graph.output]
    assert [o.name for o in graph.output] == ['F1', 'F2', 'F3', 'F4']
    assert out[3] == [1, 512, '(height//32)', '(width//32)']
    assert info['input_range'] == {'height': (64, None), 'width': (64, None)}
    assert read_metadata(path) == {'pvt_mm.part': 'backbone'}
    # No size of the 224x224 example is left in the graph's shape constants (56, 28, 14, 7
    # would be its token grids; the learned 56x56 position grid is a weight, not a shape).
    consts = [onnx.numpy_helper.to_array(t) for t in graph.initializer
              if t.data_type == onnx.TensorProto.INT64]
    assert not any(np.isin(c, [56 * 56, 28 * 28, 14 * 14, 7 * 7]).any() for c in consts)


@pytest.mark.parametrize('size', OTHER_SIZES, ids=lambda s: f'{s[0]}x{s[1]}')
def test_backbone_matches_pytorch_at_other_sizes(exported_backbone, size):
    model, path, _ = exported_backbone
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model(x)
    outs = session.run(None, {'input': x.numpy()})
    for level, (o, r) in enumerate(zip(outs, ref)):
        assert o.shape == tuple(r.shape), (level, o.shape, r.shape)
        assert np.abs(o - r.numpy()).max() <= FEATURE_ATOL, level


def test_onnxruntime_runs_every_attention_fused(exported_backbone):
    """The runner's onnxruntime session (pvt_deploy.runtimes.OnnxRuntime) runs each of
    PVT-Tiny's 8 attentions as com.microsoft.MultiHeadAttention: the same pyramid as the
    standard graph, within the bar onnxruntime is held to against PyTorch."""
    from pvt_deploy.ort_fusion import fuse_attention
    from pvt_deploy.runtimes import open_runtime
    _, path, _ = exported_backbone
    proto, fused = fuse_attention(onnx.load(path))
    assert fused == 8 and sum(n.op_type == 'MultiHeadAttention' for n in proto.graph.node) == 8
    assert not any(n.op_type == 'Softmax' for n in proto.graph.node)
    plain = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    runtime = open_runtime(path, 'onnxruntime')
    x = torch.randn(1, 3, 250, 333, generator=torch.Generator().manual_seed(2)).numpy()
    for level, (a, b) in enumerate(zip(plain.run(None, {'input': x}), runtime.run(x).values())):
        assert np.abs(a - b).max() <= FEATURE_ATOL, level
    assert onnx.load(path).graph.node[0].op_type != 'MultiHeadAttention'  # the file as written


def test_too_small_input(exported_backbone):
    """PyTorch names the minimum; onnxruntime fails in the position-embedding resize (the
    docs/deployment.md says so): 16 px leaves stage 4 with an empty grid."""
    model, path, _ = exported_backbone
    x = torch.randn(1, 3, 16, 16)
    with pytest.raises(ValueError, match='at least 32 pixels'):
        model(x)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    with pytest.raises(Exception, match='Resize'):
        session.run(None, {'input': x.numpy()})


def test_detr_is_refused_with_the_reason():
    from pvt_mm.run.config import load_config
    cfg, task = load_config(osp.join(TOY, 'detr_pvt_t_toy.py'))
    model = task.build_eval_model(cfg)
    with pytest.raises(NotExportableError, match=r'padding mask.*--backbone-only'):
        exportable_part(model, task, example=torch.randn(1, 3, 128, 160))
    module, part, names, _ = exportable_part(model, task, backbone_only=True)
    assert part == 'backbone' and names == ['F4']  # DETR reads the last map only


# ---- the tools end to end (slow: subprocesses, a trained toy model) ----

def _detections(pred):
    inst = pred['pred_instances']
    return [np.asarray(inst[k]) for k in ('bboxes', 'scores', 'labels')]


def _same_detections(onnx_pred, torch_pred):
    """Same detections: every PyTorch box has an onnxruntime box of the same label, its
    score within 1e-4 and its corners within 1e-2 px, one to one."""
    (b1, s1, l1), (b2, s2, l2) = _detections(onnx_pred), _detections(torch_pred)
    assert len(s1) == len(s2) > 0, (len(s1), len(s2))
    free = np.ones(len(s1), bool)
    for box, score, label in zip(b2, s2, l2):
        match = free & (l1 == label) & (np.abs(s1 - score) <= 1e-4) & \
            (np.abs(b1 - box).max(1) <= 1e-2)
        assert match.any(), (box, score, label)
        free[np.argmax(match)] = False


@pytest.fixture(scope='module')
def demo_end2end(demo_run, tmp_path_factory):
    """The demo's toy RetinaNet exported end to end once (--dynamic; checked at the two sizes
    toy images preprocess to), shared by the runner and INT8 tests."""
    e2e = str(tmp_path_factory.mktemp('demo_e2e') / 'retinanet_e2e.onnx')
    out = run([PY, 'tools/deployment/export_onnx.py', osp.join(TOY, 'retinanet_pvt_t_toy.py'),
               demo_run['checkpoint'], '--out', e2e, '--end2end', '--dynamic', '--check-shape',
               '128', '160', '--check-shape', '96', '160', '--repeat', '1'])
    assert 'verified' in out and 'at 96x160' in out, out[-2000:]
    return e2e


@pytest.fixture(scope='module')
def fpn_end2end(trained, tmp_path_factory):
    """The toy Semantic FPN (60 iterations) exported end to end once."""
    from test_tools_e2e import FPN_60
    e2e = str(tmp_path_factory.mktemp('fpn_e2e') / 'fpn_e2e.onnx')
    out = run([PY, 'tools/deployment/export_onnx.py', osp.join(TOY, 'fpn_pvt_t_toy.py'),
               trained(*FPN_60)['checkpoint'], '--out', e2e, '--end2end', '--dynamic',
               '--shape', '128', '160', '--check-shape', '96', '160', '--repeat', '1'])
    assert 'verified' in out, out[-2000:]
    return e2e


@pytest.mark.slow
@pytest.mark.xdist_group('demo')
def test_retinanet_onnx_gives_tools_tests_detections(tmp_path, demo_run, demo_end2end):
    """The demo's 12-epoch toy RetinaNet, exported once with --dynamic, run by onnx_infer.py
    on toy images that preprocess to two sizes (128x160 and 96x160): the detections that
    tools/test.py's PyTorch model dumps for the same images."""
    config = osp.join(TOY, 'retinanet_pvt_t_toy.py')
    ckpt = demo_run['checkpoint']
    onnx_file = str(tmp_path / 'retinanet.onnx')
    out = run([PY, 'tools/deployment/export_onnx.py', config, ckpt, '--out', onnx_file,
               '--dynamic', '--repeat', '1'])
    assert 'verified: relative max |diff|' in out, out[-2000:]
    assert read_metadata(onnx_file)['pvt_mm.classes'] == ['rectangle', 'ellipse', 'triangle']
    wide = tmp_path / 'wide'  # 200x120 images: resized to 160x96 by the test pipeline
    run([PY, 'tools/data/make_toy_data.py', '--out', str(wide), '--train', '1', '--val', '2',
         '--width', '200', '--height', '120', '--seed', '3'])
    expected = {}  # image path -> tools/test.py's prediction
    for data in (demo_run['data'] / 'coco', wide / 'coco'):
        preds = tmp_path / f'{data.parent.name}.pkl'
        run([PY, 'tools/test.py', config, ckpt, '--work-dir', str(tmp_path / 'work'),
             '--data-root', str(data) + '/', '--out', str(preds)])
        by_image = {osp.basename(p['img_path']): p for p in pickle.load(open(preds, 'rb'))}
        for name in sorted(by_image)[:2]:
            expected[str(data / 'val2017' / name)] = by_image[name]
            dump = tmp_path / f'onnx_{name}.pkl'
            out = run([PY, 'tools/deployment/onnx_infer.py', str(data / 'val2017' / name),
                       config, onnx_file, '--out', str(tmp_path / f'{name}.png'),
                       '--dump', str(dump)])
            _same_detections(pickle.load(open(dump, 'rb'))[0], by_image[name])
        assert ('on a 96x160 input' if data.parent == wide else 'on a 128x160 input') in out
    assert 'detections above 0.3: ' in out and (tmp_path / f'{name}.png').stat().st_size > 0
    # The whole predictor in one graph, run without torch: the same detections, in the
    # original image's pixels (the wide images' boxes scaled back by 200/160).
    from test_end2end import run_without_torch
    e2e = demo_end2end
    for runtime in ('onnxruntime', 'openvino'):
        result = tmp_path / f'{runtime}.json'
        out = run_without_torch([e2e, *expected, '--runtime', runtime, '--json', str(result),
                                 '--out-dir', str(tmp_path / runtime)])
        got = json.load(open(result))
        assert [p['input_shape'] for p in got] == [[128, 160]] * 2 + [[96, 160]] * 2, out
        for pred in got:
            _same_detections(dict(pred_instances=pred), expected[pred['image']])
    assert 'openvino (f32)' in out
    # The backbone alone from the same checkpoint (PVT's own strict loader), explicit path.
    out = run([PY, 'tools/deployment/export_onnx.py', config, ckpt, '--out',
               str(tmp_path / 'backbone.onnx'), '--backbone-only', '--attention', 'explicit',
               '--dynamic', '--check-shape', '100', '75', '--repeat', '1'])
    assert 'explicit attention' in out and 'at 100x75' in out and 'verified' in out


@pytest.mark.slow
@pytest.mark.xdist_group('fpn_pvt_t')
def test_semantic_fpn_onnx_gives_tools_tests_label_maps(tmp_path, trained, toy_data,
                                                        fpn_end2end):
    """The toy Semantic FPN trained once per test run (60 iterations), exported once with
    --dynamic: onnx_infer.py's label maps are tools/test.py's (its --out PNGs, the background
    a class) at two input sizes. Its scale heads upsample with mmseg's Upsample, whose Python
    size arithmetic pvt_mm.run.deployment keeps symbolic: without that the graph returned the
    example's size."""
    from PIL import Image
    from test_tools_e2e import FPN_60
    config = osp.join(TOY, 'fpn_pvt_t_toy.py')
    work = str(tmp_path / 'work')
    ckpt = trained(*FPN_60)['checkpoint']
    onnx_file = str(tmp_path / 'fpn.onnx')
    out = run([PY, 'tools/deployment/export_onnx.py', config, ckpt, '--out', onnx_file,
               '--dynamic', '--shape', '128', '160', '--check-shape', '96', '160',
               '--check-shape', '100', '100', '--repeat', '1'])
    assert 'verified' in out, out[-2000:]
    e2e = fpn_end2end
    from test_end2end import run_without_torch
    wide = tmp_path / 'wide'
    run([PY, 'tools/data/make_toy_data.py', '--out', str(wide), '--train', '1', '--val', '1',
         '--width', '200', '--height', '120', '--seed', '3'])
    for root in (toy_data, wide):
        data = root / 'ade' / 'ADEChallengeData2016'
        pngs = tmp_path / f'pred_{root.name}'
        run([PY, 'tools/test.py', config, ckpt, '--work-dir', work, '--data-root', str(data),
             '--out', str(pngs)])
        image = data / 'images' / 'validation' / 'toy_val_00000.jpg'
        dump = tmp_path / f'{root.name}.pkl'
        run([PY, 'tools/deployment/onnx_infer.py', str(image), config, onnx_file, '--out',
             str(tmp_path / f'{root.name}.png'), '--dump', str(dump)])
        label = pickle.load(open(dump, 'rb'))[0]['pred_sem_seg'].numpy()
        expected = np.asarray(Image.open(pngs / 'toy_val_00000.png')).astype(np.int64)
        assert label.shape == expected.shape == Image.open(image).size[::-1]
        assert (label == expected).all(), (label != expected).mean()
        # The end-to-end graph without torch: its label map where the test resize changed
        # nothing; where it did (the wide image), its logits resized to the image as mmseg
        # resizes them, then the arg-max. tools/test.py's map either way.
        run_without_torch([e2e, str(image), '--out-dir', str(tmp_path / f'e2e_{root.name}')])
        label = np.asarray(Image.open(tmp_path / f'e2e_{root.name}' /
                                      'toy_val_00000_labels.png')).astype(np.int64)
        assert label.shape == expected.shape
        assert (label == expected).all(), (label != expected).mean()


def _deployed_metrics(config, file, data, runtime='openvino'):
    out = run([PY, 'tools/deployment/evaluate.py', config, file, '--runtime', runtime,
               '--data-root', str(data)])
    return json.loads(out.split('pvt_mm deployed metrics: ')[-1].splitlines()[0])


def _quantize(config, ckpt, e2e, data, out_file):
    out = run([PY, 'tools/deployment/quantize.py', config, ckpt, e2e, '--out', out_file,
               '--data-root', str(data)])
    assert '"precision": "int8"' in out and osp.isfile(out_file[:-4] + '.bin'), out[-2000:]


# INT8 (NNCF, OpenVINO) beside f32 on the toy validation set, through tools/test.py's
# evaluator. Measured (AMD EPYC, 2 cores; 32 training images calibrate): the demo RetinaNet
# PVT-T box mAP 0.512 f32 / 0.510 int8; Semantic FPN PVT-T (60 iterations) mIoU f32 / int8
# in docs/deployment.md. Bars: the 0.02 of f32 for boxes, 2 points of mIoU.
@pytest.mark.slow
@pytest.mark.xdist_group('demo')
def test_int8_retinanet_keeps_its_box_map(tmp_path, demo_run, demo_end2end):
    from test_end2end import run_without_torch
    config = osp.join(TOY, 'retinanet_pvt_t_toy.py')
    data = demo_run['data'] / 'coco'
    int8 = str(tmp_path / 'retinanet_int8.xml')
    _quantize(config, demo_run['checkpoint'], demo_end2end, str(data) + '/', int8)
    f32 = _deployed_metrics(config, demo_end2end, str(data) + '/')
    # The f32 file through pvt_deploy scores what tools/test.py scored on the checkpoint.
    tested = metrics_of((demo_run['work'] / 'test_output.txt').read_text())
    assert abs(f32['coco/bbox_mAP'] - tested['coco/bbox_mAP']) <= 1e-3, (f32, tested)
    q = _deployed_metrics(config, int8, str(data) + '/')
    assert q['coco/bbox_mAP'] >= f32['coco/bbox_mAP'] - 0.02 and q['coco/bbox_mAP'] >= 0.35, \
        (q, f32)
    out = run_without_torch([int8, str(next((data / 'val2017').iterdir())), '--runtime',
                             'openvino'])
    assert 'int8 weights' in out and 'detections above 0.3' in out, out
    out = run_without_torch([int8, str(next((data / 'val2017').iterdir()))], check=False)
    assert 'is an OpenVINO IR (a quantised file): run it with --runtime openvino' in out, out


@pytest.mark.slow
@pytest.mark.xdist_group('fpn_pvt_t')
def test_int8_semantic_fpn_keeps_its_miou(tmp_path, trained, fpn_end2end):
    from test_tools_e2e import FPN_60
    config = osp.join(TOY, 'fpn_pvt_t_toy.py')
    run_ = trained(*FPN_60)
    int8 = str(tmp_path / 'fpn_int8.xml')
    _quantize(config, run_['checkpoint'], fpn_end2end, run_['data'], int8)
    f32 = _deployed_metrics(config, fpn_end2end, run_['data'])
    tested = float(re.findall(r'mIoU: ([0-9.]+)', run_['output'])[-1])
    assert abs(f32['mIoU'] - tested) <= 0.01, (f32, tested)
    q = _deployed_metrics(config, int8, run_['data'])
    assert q['mIoU'] >= f32['mIoU'] - 2.0 and q['mIoU'] >= 35, (q, f32)


@pytest.mark.slow
def test_parts_that_do_not_export_are_named(tmp_path):
    """DETR whole: the reason and the way out, no traceback. Mask R-CNN exports up to its RPN,
    and onnx_infer.py says why it cannot run that file."""
    out = run([PY, 'tools/deployment/export_onnx.py', osp.join(TOY, 'detr_pvt_t_toy.py'),
               '--out', str(tmp_path / 'detr.onnx')], check=False)
    assert 'cannot export DETR' in out and '--backbone-only' in out, out[-2000:]
    assert 'Traceback' not in out and not (tmp_path / 'detr.onnx').exists()
    config = osp.join(TOY, 'mask_rcnn_pvt_t_toy.py')
    rpn = str(tmp_path / 'rpn.onnx')
    out = run([PY, 'tools/deployment/export_onnx.py', config, '--out', rpn, '--no-verify'])
    assert 'MaskRCNN (detector_rpn' in out and 'rpn_cls_scores_0' in out, out[-2000:]
    image = tmp_path / 'x.png'
    from PIL import Image
    Image.new('RGB', (160, 128)).save(image)
    out = run([PY, 'tools/deployment/onnx_infer.py', str(image), config, rpn, '--out',
               str(tmp_path / 'y.png')], check=False)
    assert 'up to its RPN' in out and 'Traceback' not in out, out[-2000:]


# ---- PVTv2 ----

@pytest.mark.slow
def test_pvt_v2_backbone_exports_for_every_size(tmp_path):
    """PVTv2-b0's pyramid, one dynamic graph: onnxruntime gives PyTorch's maps at sizes that
    are not multiples of 32, tall and wide (padding makes every map a ceiling)."""
    from pvt_mm import PVTv2
    torch.manual_seed(0)
    model = PVTv2('b0').eval()
    example = torch.randn(1, 3, 224, 224)
    module, part, names, _ = exportable_part(model, None, example=example)
    path = str(tmp_path / 'pvt_v2_b0.onnx')
    export_onnx(module, example, path, output_names=names, dynamic=True)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    for size in [(250, 333), (96, 500), (452, 92), (64, 64)]:
        x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            ref = model(x)
        for level, (o, r) in enumerate(zip(session.run(None, {'input': x.numpy()}), ref)):
            assert o.shape == tuple(r.shape), (size, level, o.shape, r.shape)
            assert np.abs(o - r.numpy()).max() <= FEATURE_ATOL, (size, level)


def _grids(h, w):
    """The four stage grids of a PVTv2 input (ceil(n / 4), then halving with a ceiling)."""
    out = [(-(-h // 4), -(-w // 4))]
    for _ in range(3):
        out.append((-(-out[-1][0] // 2), -(-out[-1][1] // 2)))
    return out


# Sizes whose stage grids have no side divisible by 7 (linear SRA pools every grid to 7x7):
# tall, wide, and one whose late grids are smaller than 7.
LINEAR_SIZES = [(230, 310), (92, 452), (44, 60)]


@pytest.mark.slow
def test_pvt_v2_models_export_with_the_tool(tmp_path):
    """tools/deployment/export_onnx.py --dynamic on a PVTv2 classifier with linear SRA (b0's
    widths; its adaptive pooling exports for every size, checked at grids that are not
    multiples of 7), and on the toy PVTv2-b0 RetinaNet and Semantic FPN: onnxruntime matches
    PyTorch to 1e-4 at sizes other than the example."""
    assert all(g % 7 for size in LINEAR_SIZES for grid in _grids(*size) for g in grid)
    b0_widths = dict(embed_dims=[32, 64, 160, 256], depths=[2, 2, 2, 2], num_heads=[1, 2, 5, 8],
                     mlp_ratios=[8, 8, 4, 4], sr_ratios=[8, 4, 2, 1])
    configs = {
        'cls': ("_base_ = ['TOY/pvt_v2_b0_cls_toy.py']\n"
                f"model = dict(backbone=dict(arch=dict(_delete_=True, **{b0_widths!r}, linear=True)))\n",
                LINEAR_SIZES, 'ImageClassifier (classifier'),
        'det': ("_base_ = ['TOY/retinanet_pvt_v2_b0_toy.py']\n", [(96, 160), (100, 100)],
                'RetinaNet (detector'),
        'seg': ("_base_ = ['TOY/fpn_pvt_v2_b0_toy.py']\n", [(96, 160), (100, 100)],
                'EncoderDecoder (segmentor'),
    }
    for name, (text, sizes, exported) in configs.items():
        config = tmp_path / f'{name}_pvt_v2.py'
        config.write_text(text.replace('TOY/', TOY + '/'))
        checks = [a for hw in sizes for a in ('--check-shape', str(hw[0]), str(hw[1]))]
        out = run([PY, 'tools/deployment/export_onnx.py', str(config), '--out',
                   str(tmp_path / f'{name}.onnx'), '--dynamic', '--repeat', '1', *checks])
        assert exported in out and 'verified' in out, out[-2000:]
        for hw in sizes:
            assert f'at {hw[0]}x{hw[1]}' in out, out[-2000:]


@pytest.mark.parametrize('config, shape', [
    ('toy/fpn_pvt_t_toy.py', (128, 160)), ('toy/trans2seg_pvt_t_toy.py', (128, 160)),
    ('toy/fpn_pvt_v2_b0_toy.py', (128, 160)), ('toy/retinanet_pvt_t_toy.py', (128, 160)),
    ('segmentation/fpn_pvt_s_ade20k_40k.py', (512, 2048)),
    ('detection/retinanet_pvt_s_fpn_1x_coco.py', (800, 1344)),
    ('toy/pvt_t_cls_toy.py', (64, 64)),
])
def test_the_default_example_size_is_the_test_pipelines(config, shape):
    """export_onnx.py without --shape: the size the config's own test pipeline resizes to
    ((short, long) of a keep-ratio resize), padded as its data preprocessor pads at test time;
    a toy segmentor's is its 128x160 test size, not the 512x512 ADE20K crop it inherits."""
    from pvt_mm.run.config import load_config
    cfg, task = load_config(osp.join(ROOT, 'configs', config))
    assert export_rules(task).export_shape(cfg) == shape
