"""End-to-end ONNX graphs (``export_onnx.py --end2end``) and their runner without torch
(``pvt_deploy``): the graph's post-processing gives what mmdet's, mmseg's and mmpretrain's own
code gives, in PyTorch and in onnxruntime; the runner resizes as the test pipelines do and
runs in a process where importing torch fails. The tools end to end (trained toys, against
``tools/test.py --out``) are in test_deployment.py.
"""
import json
import os
import subprocess
import os.path as osp

import numpy as np
import onnxruntime as ort
import pytest
import torch

from conftest import PY, ROOT, TOY, run
from pvt_mm.run.config import load_config
from pvt_mm.run.deployment import NotExportableError, export_rules, read_metadata
from pvt_mm.run.deployment.export_model import export_model

# A process in which torch, OpenMMLab and pvt_mm cannot be imported, running pvt_deploy.
NO_TORCH = '''
import runpy, sys
BLOCKED = ('torch', 'torchvision', 'mmcv', 'mmengine', 'mmdet', 'mmseg', 'mmpretrain',
           'pvt_mm', 'timm')
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in BLOCKED:
            raise ImportError(f'{name} is blocked in this process')
sys.meta_path.insert(0, Blocker())
try:
    import torch
except ImportError:
    pass
else:
    raise SystemExit('torch imported despite the blocker')
sys.argv = ['pvt_deploy', *sys.argv[1:]]
runpy.run_module('pvt_deploy', run_name='__main__')
assert not any(m.split('.')[0] in BLOCKED for m in sys.modules), sorted(sys.modules)
'''


def run_without_torch(args, installed=None, check=True):
    """``python -m pvt_deploy ARGS`` where ``import torch`` raises; with ``installed``, the
    pvt_deploy installed into that folder instead of the checkout's."""
    if installed is None:
        return run([PY, '-c', NO_TORCH, *args], check=check)
    proc = subprocess.run([PY, '-c', NO_TORCH, *args], cwd=installed, capture_output=True,
                          text=True, timeout=600,
                          env={**os.environ, 'PYTHONPATH': str(installed)})
    out = proc.stdout + proc.stderr
    assert not check or proc.returncode == 0, out[-4000:]
    return out


def install_pvt_deploy_alone(folder):
    """``pip install ./pvt_deploy`` (its own package metadata) into ``folder``, from a copy
    (the build writes beside its sources); its dependencies are this environment's. Returns
    the installed METADATA text."""
    import shutil
    source = osp.join(str(folder) + '_source', 'pvt_deploy')
    shutil.copytree(osp.join(ROOT, 'pvt_deploy'), source,
                    ignore=shutil.ignore_patterns('__pycache__', 'build', '*.egg-info'))
    run([PY, '-m', 'pip', 'install', '--quiet', '--no-deps', '--no-build-isolation',
         '--disable-pip-version-check', '--target', str(folder), source])
    meta = next(osp.join(folder, d, 'METADATA') for d in os.listdir(folder)
                if d.startswith('pvt_deploy') and d.endswith('.dist-info'))
    return open(meta).read()


def _image(h, w, seed=0):
    return torch.randint(0, 256, (1, 3, h, w), generator=torch.Generator().manual_seed(seed)
                         ).float()


def _model(config, cfg_options=None):
    cfg, task = load_config(osp.join(TOY, config), cfg_options)
    torch.manual_seed(0)
    model = task.build_eval_model(cfg)
    model.init_weights()
    return cfg, task, model


def _confident(head):
    """Classification biases at 0 instead of the prior's -4.6, so that a randomly
    initialised head scores (anchor, class) pairs around 0.5 and NMS has work to do."""
    for name in ('retina_cls', 'atss_cls', 'gfl_cls'):
        if hasattr(head, name):
            torch.nn.init.zeros_(getattr(head, name).bias)


def _upstream_detections(model, image):
    """mmdet's own prediction for an image the test pipeline did not resize."""
    from mmdet.structures import DetDataSample
    h, w = image.shape[-2:]
    sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                         scale_factor=(1.0, 1.0)))
    data = model.data_preprocessor(dict(inputs=[image[0].flip(0)], data_samples=[sample]))
    with torch.no_grad():
        inst = model.predict(data['inputs'], data['data_samples'], rescale=True)[0].pred_instances
    return inst.bboxes, inst.scores, inst.labels


@pytest.mark.parametrize('config', ['retinanet_pvt_t_toy.py', 'atss_pvt_v2_b0_toy.py',
                                    'gfl_pvt_v2_b0_toy.py'])
def test_dense_detector_graph_gives_mmdets_predictions(config):
    """The graph's module in PyTorch, on images of two sizes that are not multiples of the
    pad divisor: mmdet's predict (anchors, decoding, thresholds, its batched NMS) boxes,
    scores and labels, in the same order."""
    from pvt_mm.run.deployment.graphs import DenseDetectorGraph as DenseDetector
    cfg, task, model = _model(config)
    _confident(model.bbox_head)
    module, names, constants = export_rules(task).end2end(model, cfg)
    assert isinstance(module, DenseDetector) and names == ['boxes', 'scores', 'labels']
    assert constants['score_thr'] == model.bbox_head.test_cfg['score_thr']
    for h, w in ((128, 160), (100, 150)):
        image = _image(h, w)
        with torch.no_grad():
            boxes, scores, labels = module(image)
        ref_boxes, ref_scores, ref_labels = _upstream_detections(model, image)
        assert len(scores) == len(ref_scores) > 20, (len(scores), len(ref_scores))
        assert torch.equal(labels, ref_labels)
        torch.testing.assert_close(scores, ref_scores, rtol=0, atol=1e-6)
        torch.testing.assert_close(boxes, ref_boxes, rtol=0, atol=1e-3)
        assert boxes[:, 2].max() <= w and boxes[:, 3].max() <= h  # clipped to the input
    # Nothing above the score threshold: no detections, no error.
    for name in ('retina_cls', 'atss_cls', 'gfl_cls'):
        if hasattr(model.bbox_head, name):
            torch.nn.init.constant_(getattr(model.bbox_head, name).bias, -20.0)
    with torch.no_grad():
        boxes, scores, labels = module(_image(128, 160))
    assert boxes.shape == (0, 4) and len(_upstream_detections(model, _image(128, 160))[1]) == 0


@pytest.mark.slow
def test_detector_exports_end_to_end_for_every_size(tmp_path):
    """RetinaNet exported with --end2end --dynamic: traced at 256x256 (its coarsest level,
    stride 128, 2 wide), NonMaxSuppression in the graph, the metadata a runner needs, and
    onnxruntime's detections PyTorch's at the traced size and at two others, one whose
    coarsest map is 1 wide (the tool's own check, which fails the export otherwise)."""
    out = str(tmp_path / 'retinanet.onnx')
    cfg, task, model = _model('retinanet_pvt_t_toy.py')
    _confident(model.bbox_head)
    ckpt = str(tmp_path / 'retinanet.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    export_model(osp.join(TOY, 'retinanet_pvt_t_toy.py'), ckpt, out=out, end2end=True,
                 dynamic=True, check_shapes=[(96, 200), (300, 260)], repeat=1)
    import onnx
    ops = {n.op_type for n in onnx.load(out).graph.node}
    assert 'NonMaxSuppression' in ops and 'TopK' in ops, sorted(ops)
    meta = read_metadata(out)
    e2e = meta['pvt_mm.end2end']
    assert meta['pvt_mm.part'] == 'end2end' and e2e['task'] == 'det'
    assert e2e['resize'] == [dict(type='Resize', scale=[160, 128], keep_ratio=True,
                                  interpolation='bilinear', backend='cv2')]
    assert e2e['classes'] == ['rectangle', 'ellipse', 'triangle']
    assert e2e['preprocess']['size_divisor'] == 32 and e2e['outputs'] == ['boxes', 'scores',
                                                                           'labels']
    # onnx_infer.py refuses it with the runner's name.
    from pvt_mm.run.deployment.onnx_inference import check_exported
    with pytest.raises(SystemExit, match='pvt_deploy'):
        check_exported(meta, out, task, model)


def test_segmentor_and_classifier_graphs_give_the_upstream_predictions(tmp_path):
    """Semantic FPN: the graph's label map is mmseg's predict for an unresized image (logits
    resized to the padded input, padding cropped, arg-max). The classifier: mmpretrain's
    softmax. Both in PyTorch and through onnxruntime."""
    from mmseg.structures import SegDataSample
    cfg, task, model = _model('fpn_pvt_t_toy.py')
    module, names, _ = export_rules(task).end2end(model, cfg)
    image = _image(100, 150)
    sample = SegDataSample(metainfo=dict(img_shape=(100, 150), ori_shape=(100, 150)))
    data = model.data_preprocessor(dict(inputs=[image[0].flip(0)], data_samples=[sample]))
    with torch.no_grad():
        ref = model.predict(data['inputs'], data['data_samples'])[0]
        labels, logits = module(image)
    assert names == ['labels', 'logits'] and labels.shape == (100, 150)
    assert torch.equal(labels, ref.pred_sem_seg.data[0])
    torch.testing.assert_close(logits, ref.seg_logits.data, rtol=0, atol=1e-5)
    # The runner's resize of the logits to an image the test pipeline had scaled: mmseg's.
    from mmseg.models.utils import resize

    from pvt_deploy.model import resize_logits
    for align in (False, True):
        for size in ((250, 375), (61, 90)):
            expected = resize(logits[None], size, mode='bilinear', align_corners=align)[0]
            got = resize_logits(logits.numpy(), size, align)
            np.testing.assert_allclose(got, expected.numpy(), rtol=0, atol=1e-5)

    cfg, task, model = _model('pvt_t_cls_toy.py')
    module, names, _ = export_rules(task).end2end(model, cfg)
    image = _image(64, 64)
    data = model.data_preprocessor(dict(inputs=[image[0].flip(0)]))
    with torch.no_grad():
        ref = model.predict(data['inputs'])[0].pred_score
        probabilities = module(image)
    torch.testing.assert_close(probabilities, ref, rtol=0, atol=1e-6)
    assert names == ['probabilities']
    out, ckpt = str(tmp_path / 'cls.onnx'), str(tmp_path / 'cls.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    export_model(osp.join(TOY, 'pvt_t_cls_toy.py'), ckpt, out=out, end2end=True, repeat=1)
    session = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    np.testing.assert_allclose(session.run(None, {'input': image.numpy()})[0],
                               probabilities.numpy(), rtol=0, atol=1e-5)


@pytest.mark.slow
def test_detr_graph_makes_its_padding_mask_from_the_input(tmp_path):
    """DETR, whose transformer masks the padding from each image's size: the graph's module
    gives mmdet's predict at two sizes (one padded, one not), and the exported graph, traced
    at 128x160, gives PyTorch's boxes at 100x150 in onnxruntime (the tool's check): the mask
    follows the input instead of the traced size."""
    cfg, task, model = _model('detr_pvt_t_toy.py')
    module, names, constants = export_rules(task).end2end(model, cfg)
    assert constants == dict(max_per_img=20)
    for h, w in ((128, 160), (100, 150)):
        image = _image(h, w)
        with torch.no_grad():
            boxes, scores, labels = module(image)
        ref_boxes, ref_scores, ref_labels = _upstream_detections(model, image)
        assert len(scores) == 20 and torch.equal(labels, ref_labels)
        torch.testing.assert_close(scores, ref_scores, rtol=0, atol=1e-6)
        torch.testing.assert_close(boxes, ref_boxes, rtol=0, atol=1e-3)
    ckpt = str(tmp_path / 'detr.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    export_model(osp.join(TOY, 'detr_pvt_t_toy.py'), ckpt, out=str(tmp_path / 'detr.onnx'),
                 end2end=True, dynamic=True, check_shapes=[(100, 150)], repeat=1)


@pytest.mark.slow
def test_mask_rcnn_graph_gives_mmdets_boxes_and_masks(tmp_path):
    """Mask R-CNN (random weights): the graph's module (RPN proposals with NMS per level,
    torchvision's RoIAlign, the box head's per-class decoding and NMS, the mask head) gives
    mmdet's predict at two sizes: the same detections, and its pasted masks when the graph's
    mask probabilities are pasted by mmdet's own paste. Exported dynamic, and run by
    pvt_deploy on an image the test resize scales (200x120 -> 160x96): mmdet's
    inference_detector's boxes and masks in the original image."""
    import cv2
    from mmdet.apis import inference_detector
    from mmdet.models.roi_heads.mask_heads.fcn_mask_head import _do_paste_mask

    from pvt_deploy import Model
    cfg, task, model = _model('mask_rcnn_pvt_t_toy.py')
    module, names, constants = export_rules(task).end2end(model, cfg)
    assert names == ['boxes', 'scores', 'labels', 'masks']
    assert constants['rcnn']['mask_thr_binary'] == 0.5
    for h, w in ((128, 160), (100, 150)):
        image = _image(h, w)
        with torch.no_grad():
            boxes, scores, labels, masks = module(image)
        from mmdet.structures import DetDataSample
        sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                             scale_factor=(1.0, 1.0)))
        data = model.data_preprocessor(dict(inputs=[image[0].flip(0)], data_samples=[sample]))
        with torch.no_grad():
            ref = model.predict(data['inputs'], data['data_samples'])[0].pred_instances
        assert len(scores) == len(ref.scores) > 20 and torch.equal(labels, ref.labels)
        torch.testing.assert_close(scores, ref.scores, rtol=0, atol=1e-6)
        torch.testing.assert_close(boxes, ref.bboxes, rtol=0, atol=1e-3)
        pasted = _do_paste_mask(masks[:, None], boxes, h, w, skip_empty=False)[0] >= 0.5
        assert (pasted == ref.masks).float().mean() > 0.9999

    ckpt, out = str(tmp_path / 'mask_rcnn.pth'), str(tmp_path / 'mask_rcnn.onnx')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    export_model(osp.join(TOY, 'mask_rcnn_pvt_t_toy.py'), ckpt, out=out, end2end=True,
                 dynamic=True, check_shapes=[(96, 160)], repeat=1)
    path = str(tmp_path / 'wide.png')
    cv2.imwrite(path, np.random.default_rng(2).integers(0, 256, (120, 200, 3), dtype=np.uint8))
    pred = Model(out).predict(path)
    from mmdet.apis import init_detector
    detector = init_detector(cfg, ckpt, device='cpu')
    ref = inference_detector(detector, path).pred_instances
    assert pred.input_shape == (96, 160) and len(pred.scores) == len(ref.scores) > 20
    np.testing.assert_array_equal(pred.labels, ref.labels.numpy())
    np.testing.assert_allclose(pred.scores, ref.scores.numpy(), rtol=0, atol=1e-4)
    np.testing.assert_allclose(pred.boxes, ref.bboxes.numpy(), rtol=0, atol=1e-2)
    assert pred.masks.shape == tuple(ref.masks.shape) == (len(ref.scores), 120, 200)
    assert (pred.masks == ref.masks.numpy()).mean() > 0.999


def test_runner_pastes_masks_as_mmdet():
    """pvt_deploy's NumPy paste against mmdet's _do_paste_mask (CPU: one box at a time,
    skip_empty): boxes with fractional corners, one past the image's edge, one a pixel wide."""
    from mmdet.models.roi_heads.mask_heads.fcn_mask_head import _do_paste_mask

    from pvt_deploy.model import paste_masks, rle
    g = torch.Generator().manual_seed(0)
    masks = torch.rand(4, 28, 28, generator=g)
    boxes = torch.tensor([[10.3, 5.7, 60.2, 41.9], [0.0, 0.0, 80.0, 50.0],
                          [55.5, 30.2, 95.0, 70.0], [20.0, 20.0, 21.0, 40.0]])
    h, w = 60, 80
    ref = np.zeros((4, h, w), bool)
    for i in range(4):
        chunk, (ys, xs) = _do_paste_mask(masks[i:i + 1, None], boxes[i:i + 1], h, w)
        ref[i, ys, xs] = (chunk[0] >= 0.5).numpy()
    got = paste_masks(masks.numpy(), boxes.numpy(), (h, w), 0.5)
    assert (got == ref).mean() > 0.9995, (got != ref).sum()
    from pycocotools import mask as mask_utils
    decoded = mask_utils.decode(mask_utils.frPyObjects(rle(got[0]), h, w))
    assert np.array_equal(decoded.astype(bool), got[0])


def test_what_has_no_end_to_end_graph_is_named():
    """A two-stage detector whose RoI head is not a StandardRoIHead (Cascade) is refused with
    the reason; a test pipeline step the runner cannot repeat is named."""
    from pvt_mm.run.deployment.graphs import resize_steps
    cfg, task, model = _model('cascade_mask_rcnn_pvt_v2_b0_toy.py')
    with pytest.raises(NotExportableError, match='StandardRoIHead'):
        export_rules(task).end2end(model, cfg)
    with pytest.raises(ValueError, match='RandomFlip step'):
        resize_steps([dict(type='LoadImageFromFile'), dict(type='RandomFlip', prob=0.5)])


# ---- the runner's resize: the pixels the test pipeline makes -----------------------------

@pytest.mark.parametrize('config,size', [
    ('retinanet_pvt_t_toy.py', (333, 250)), ('retinanet_pvt_t_toy.py', (90, 201)),
    ('fpn_pvt_t_toy.py', (97, 300)), ('pvt_t_cls_toy.py', (101, 77)),
    ('pvt_t_cls_toy.py', (64, 80))])
def test_runner_resizes_as_the_test_pipeline(tmp_path, config, size):
    """pvt_deploy.image on an image file: the same pixels, size and scale factor as the
    config's own test pipeline (mmcv's Resize with cv2; mmpretrain's ResizeEdge with Pillow
    and CenterCrop)."""
    import cv2
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope

    from pvt_deploy.image import apply_steps, read
    from pvt_mm.run.deployment.graphs import resize_steps
    from pvt_mm.run.tasks import _test_pipeline
    cfg, task = load_config(osp.join(TOY, config))
    init_default_scope(cfg.default_scope)
    w, h = size
    path = str(tmp_path / 'image.png')
    cv2.imwrite(path, np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8))
    steps = [t for t in _test_pipeline(cfg)
             if not str(t['type']).startswith(('LoadAnnotations', 'Pack'))]
    expected = Compose(steps)(dict(img_path=path, img_id=0))
    got = apply_steps(read(path), resize_steps(_test_pipeline(cfg)))
    assert got.image.shape == expected['img'].shape
    assert np.array_equal(got.image, expected['img'])
    if 'scale_factor' in expected:
        np.testing.assert_allclose(got.scale, expected['scale_factor'], rtol=1e-12)


@pytest.mark.slow
def test_runner_without_torch_classifies_as_pytorch(tmp_path):
    """The toy classifier (random weights) exported with --end2end and run by
    ``python -m pvt_deploy`` in a process where importing torch raises: the probabilities of
    mmpretrain's own model for the image the test pipeline makes."""
    import cv2
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.registry import init_default_scope
    cfg, task, model = _model('pvt_t_cls_toy.py')
    ckpt = str(tmp_path / 'cls.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    out = str(tmp_path / 'cls.onnx')
    export_model(osp.join(TOY, 'pvt_t_cls_toy.py'), ckpt, out=out, end2end=True, dynamic=True,
                 repeat=1)
    path = str(tmp_path / 'image.png')
    cv2.imwrite(path, np.random.default_rng(1).integers(0, 256, (90, 70, 3), dtype=np.uint8))
    init_default_scope('mmpretrain')
    data = Compose(cfg.test_dataloader.dataset.pipeline)(dict(img_path=path))
    with torch.no_grad():
        ref = model.test_step(pseudo_collate([data]))[0].pred_score.numpy()
    result = tmp_path / 'pred.json'
    # pvt_deploy installed on its own (no pvt_mm, no torch in its requirements) runs it.
    alone = tmp_path / 'alone'
    metadata = install_pvt_deploy_alone(alone)
    requires = {ln.split(':', 1)[1].split(';')[0].strip() for ln in metadata.splitlines()
                if ln.startswith('Requires-Dist:') and 'extra ==' not in ln}
    assert requires == {'numpy', 'onnx', 'onnxruntime', 'opencv-python-headless'}, requires
    assert not osp.exists(alone / 'pvt_mm') and osp.exists(alone / 'pvt_deploy' / 'schema.py')
    output = run_without_torch([out, path, '--json', str(result), '--out-dir',
                                str(tmp_path / 'drawn')], installed=alone)
    assert 'top 3 classes' in output, output
    pred = json.load(open(result))[0]
    np.testing.assert_allclose(pred['probabilities'], ref, rtol=0, atol=1e-5)
    assert pred['input_shape'] == [64, 64] and pred['image_shape'] == [90, 70]
    assert osp.getsize(tmp_path / 'drawn' / 'image.png') > 0
    # A file without end-to-end metadata is refused with what to do.
    out2 = str(tmp_path / 'raw.onnx')
    export_model(osp.join(TOY, 'pvt_t_cls_toy.py'), out=out2, verify=False)
    proc = run([PY, '-c', NO_TORCH, out2, path], check=False)
    assert 'export it with tools/deployment/export_onnx.py --end2end' in proc, proc
    # A file of another schema version is refused, both versions named.
    import onnx
    from pvt_deploy import schema
    proto = onnx.load(out)
    for prop in proto.metadata_props:
        if prop.key == schema.META_END2END:
            record = json.loads(prop.value)
            record['schema_version'] = schema.VERSION + 1
            prop.value = json.dumps(record)
    newer = str(tmp_path / 'newer.onnx')
    onnx.save(proto, newer)
    proc = run_without_torch([newer, path], check=False)
    assert f'schema version {schema.VERSION + 1}; this runner reads version {schema.VERSION}' \
        in proc, proc


@pytest.mark.parametrize('h,w', [(3, 5), (4, 5), (7, 13), (17, 9), (1, 2), (2, 6)])
def test_pyramid_pooling_for_a_symbolic_size_is_torchs(h, w):
    """The exporter's form of nn.AdaptiveAvgPool2d (UPerNet's pyramid pooling): PyTorch's
    windows, for fewer and more cells than rows or columns; sums by cumulative-sum
    differences, so within float32 rounding of partial sums: each of up to n additions of
    sums up to n * max|x| rounds by at most eps times that, on each of the two axes."""
    from pvt_mm.run.deployment.export import _adaptive_average
    x = torch.randn(2, 8, h, w, generator=torch.Generator().manual_seed(h * w)) * 10
    n = max(h, w)
    atol = 2 * n * n * torch.finfo(torch.float32).eps * x.abs().max().item()
    for cells in (1, 2, 3, 6):
        ref = torch.nn.functional.adaptive_avg_pool2d(x, cells)
        got = _adaptive_average(_adaptive_average(x, cells, -2), cells, -1)
        torch.testing.assert_close(got, ref, rtol=0, atol=atol)
