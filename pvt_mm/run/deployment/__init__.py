"""The deployment wing: everything that turns a trained model into a graph.

* :mod:`.rules`: per task (keyed by the task table), what part of a model exports, at which
  example size, which end-to-end graph it gets, how raw outputs become predictions again;
* :mod:`.graphs`: the end-to-end graph modules (image in, predictions out);
* :mod:`.export`: ``torch.export`` and the ONNX translation of a module, the file checked;
* :mod:`.export_model`: ``tools/deployment/export_onnx.py`` (a config and checkpoint to a
  verified file, its metadata written through :mod:`pvt_deploy.schema`);
* :mod:`.onnx_inference`: ``tools/deployment/onnx_infer.py`` (a raw export run with the
  upstream post-processing).

The runner without torch, and the contract both sides import, are :mod:`pvt_deploy`
(:mod:`pvt_deploy.schema`); the export-time forms of network operations stay in the
network layer (:mod:`pvt_mm.network.exportable`), whose forward uses them.
"""
from pvt_deploy.schema import (META_CLASSES, META_END2END, META_MODEL, META_OUTPUTS, META_PART,
                               META_TASK)

from .export import export_onnx, exportable_part, read_metadata
from .rules import EXPORT_RULES, NotExportableError, export_rules

__all__ = ['NotExportableError', 'EXPORT_RULES', 'export_rules', 'exportable_part', 'export_onnx', 'read_metadata',
           'META_PART', 'META_TASK', 'META_OUTPUTS', 'META_MODEL', 'META_CLASSES',
           'META_END2END']
