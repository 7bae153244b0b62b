"""A deployed file evaluated on the config's test set with the config's own evaluator.

``evaluate_deployed(config, file)`` runs ``pvt_deploy`` (the runner without torch) on every
test image, an end-to-end ONNX file or the OpenVINO IR ``quantize.py`` wrote, and hands its
predictions, in the original image's pixels, to the metrics ``tools/test.py`` uses
(``test_evaluator``: mmdet's CocoMetric, mmseg's IoUMetric), with the ground truth the test
pipeline loads. The figures are comparable one to one with ``tools/test.py``'s on the
checkpoint the file was exported from.
"""
from __future__ import annotations


def evaluate_deployed(config: str, file: str, *, runtime: str = 'onnxruntime',
                      precision: str | None = 'f32', threads: int | None = None,
                      data_root: str | None = None, cfg_options: dict | None = None,
                      limit: int | None = None) -> dict:
    """The test evaluator's metrics of ``file`` on ``config``'s test set (the first ``limit``
    images when given)."""
    from mmengine.evaluator import Evaluator
    from mmengine.registry import DefaultScope

    from pvt_deploy import Model

    from ..config import load_config
    from ..datacheck import check_datasets, set_data_root
    cfg, task = load_config(config, cfg_options)
    if data_root:
        set_data_root(cfg, data_root, ('test',))
    check_datasets(cfg, ('test',))
    model = Model(file, runtime, threads, precision)
    with DefaultScope.overwrite_default_scope(task.package):
        dataset = task.registry('DATASETS').build(cfg.test_dataloader.dataset)
        evaluator = Evaluator(cfg.test_evaluator)
    evaluator.dataset_meta = dataset.metainfo
    count = len(dataset) if limit is None else min(limit, len(dataset))
    for i in range(count):
        sample = dataset[i]['data_samples']
        task.attach_deployed(sample, model.predict(sample.img_path))
        evaluator.process(data_samples=[sample], data_batch=None)
    return evaluator.evaluate(count)


__all__ = ['evaluate_deployed']
