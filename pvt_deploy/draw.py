"""Predictions drawn on the original image with OpenCV (boxes with their class and score,
label maps blended in the dataset's palette, the top classes written in a corner), and
summed up in one line; each task's way is its entry in :data:`pvt_deploy.tasks.TASKS`."""
from __future__ import annotations

import numpy as np

from .model import Prediction
from .tasks import TASKS


def draw(image: np.ndarray, pred: Prediction, classes: list[str], *, score_thr: float = 0.3,
         topk: int = 5, palette: list | None = None) -> np.ndarray:
    """A copy of ``image`` (BGR) with ``pred`` drawn on it."""
    scale = max(0.4, min(image.shape[:2]) / 400)
    return TASKS[pred.task].draw(image.copy(), pred, classes, scale, score_thr=score_thr,
                                 topk=topk, palette=palette)


def summary(pred: Prediction, classes: list[str], score_thr: float = 0.3, topk: int = 5) -> str:
    """One line about the prediction, as tools/demo.py prints it."""
    return TASKS[pred.task].summary(pred, classes, score_thr, topk)


__all__ = ['draw', 'summary']
