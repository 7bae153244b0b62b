"""Writes a small synthetic dataset in the COCO, ADE20K and ImageNet layouts, deterministic from a seed.

Each scene shows a few filled shapes (rectangle, ellipse, triangle) on a noisy background.
The same scenes give the detection and segmentation layouts:

    OUT/coco/{train2017,val2017}/*.jpg
    OUT/coco/annotations/instances_{train,val}2017.json   boxes + polygon masks
    OUT/ade/ADEChallengeData2016/images/{training,validation}/*.jpg
    OUT/ade/ADEChallengeData2016/annotations/{training,validation}/*.png
        label PNGs as in ADE20K: 0 = background (ignored with reduce_zero_label), k = class k

and a classification set of its own, one shape per image, the classes in turn, in the
ImageNet folder layout (torchvision's ImageFolder, mmpretrain's CustomDataset):

    OUT/imagenet/{train,val}/{rectangle,ellipse,triangle}/*.jpg

Usage: python tools/data/make_toy_data.py [--out data/toy] [--seed 0] [--train 64] [--val 16]
"""
from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ('rectangle', 'ellipse', 'triangle')
COLORS = ((220, 60, 60), (60, 180, 75), (60, 90, 220))  # one colour per class


def polygon_of(kind: str, box: tuple[float, float, float, float]) -> list[tuple[float, float]]:
    """The outline of a shape inside ``box`` = (x0, y0, x1, y1) as a polygon."""
    x0, y0, x1, y1 = box
    if kind == 'rectangle':
        return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    if kind == 'triangle':
        return [((x0 + x1) / 2, y0), (x1, y1), (x0, y1)]
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    return [(cx + rx * math.cos(t), cy + ry * math.sin(t))
            for t in np.linspace(0, 2 * math.pi, 24, endpoint=False)]


def make_scene(rng: np.random.Generator, size: tuple[int, int], max_objects: int):
    """Returns the RGB image, the label map and the objects [(class index, box, polygon)]."""
    w, h = size
    base = rng.integers(90, 170, size=3)
    noise = rng.normal(0, 12, size=(h, w, 3))
    img = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))
    label = Image.new('L', (w, h), 0)
    draw, draw_label = ImageDraw.Draw(img), ImageDraw.Draw(label)
    objects = []
    for _ in range(rng.integers(1, max_objects + 1)):
        cls = int(rng.integers(len(CLASSES)))
        bw, bh = rng.uniform(0.2, 0.45) * w, rng.uniform(0.2, 0.45) * h
        x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
        box = (float(x0), float(y0), float(x0 + bw), float(y0 + bh))
        poly = polygon_of(CLASSES[cls], box)
        shade = np.clip(np.array(COLORS[cls]) + rng.integers(-25, 26, size=3), 0, 255)
        draw.polygon(poly, fill=tuple(int(c) for c in shade))
        draw_label.polygon(poly, fill=cls + 1)
        objects.append((cls, box, poly))
    # Later shapes cover earlier ones: keep boxes and polygons of what stays visible.
    visible = np.array(label)
    kept = []
    for cls, box, poly in objects:
        mask = Image.new('L', (w, h), 0)
        ImageDraw.Draw(mask).polygon(poly, fill=1)
        own = (np.array(mask) > 0) & (visible == cls + 1)
        if own.sum() >= 0.6 * max(1, (np.array(mask) > 0).sum()):
            kept.append((cls, box, poly))
    return img, label, kept


def write_split(out: Path, split: str, n: int, rng: np.random.Generator,
                size: tuple[int, int], max_objects: int, start_id: int) -> int:
    coco_split = {'train': 'train2017', 'val': 'val2017'}[split]
    ade_split = {'train': 'training', 'val': 'validation'}[split]
    img_dir = out / 'coco' / coco_split
    ade_img = out / 'ade' / 'ADEChallengeData2016' / 'images' / ade_split
    ade_ann = out / 'ade' / 'ADEChallengeData2016' / 'annotations' / ade_split
    for d in (img_dir, ade_img, ade_ann, out / 'coco' / 'annotations'):
        d.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    ann_id = start_id * 100
    for i in range(n):
        img, label, objects = make_scene(rng, size, max_objects)
        name = f'toy_{split}_{i:05d}'
        img.save(img_dir / f'{name}.jpg', quality=95)
        img.save(ade_img / f'{name}.jpg', quality=95)
        label.save(ade_ann / f'{name}.png')
        image_id = start_id + i
        images.append(dict(id=image_id, file_name=f'{name}.jpg', width=size[0], height=size[1]))
        for cls, (x0, y0, x1, y1), poly in objects:
            ann_id += 1
            annotations.append(dict(
                id=ann_id, image_id=image_id, category_id=cls + 1, iscrowd=0,
                bbox=[round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                area=round((x1 - x0) * (y1 - y0), 2),
                segmentation=[[round(c, 2) for xy in poly for c in xy]]))
    coco = dict(images=images, annotations=annotations,
                categories=[dict(id=k + 1, name=c) for k, c in enumerate(CLASSES)])
    with open(out / 'coco' / 'annotations' / f'instances_{coco_split}.json', 'w') as f:
        json.dump(coco, f)
    return len(annotations)


def write_classification(out: Path, split: str, n: int, rng: np.random.Generator,
                         size: tuple[int, int]) -> None:
    """``n`` images of one shape each (class ``i % 3``, so the classes stay balanced)."""
    w, h = size
    for cls in CLASSES:
        (out / 'imagenet' / split / cls).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cls = i % len(CLASSES)
        base = rng.integers(90, 170, size=3)
        img = Image.fromarray(np.clip(base + rng.normal(0, 12, size=(h, w, 3)), 0, 255)
                              .astype(np.uint8))
        bw, bh = rng.uniform(0.4, 0.8) * w, rng.uniform(0.4, 0.8) * h
        x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
        shade = np.clip(np.array(COLORS[cls]) + rng.integers(-25, 26, size=3), 0, 255)
        ImageDraw.Draw(img).polygon(polygon_of(CLASSES[cls], (x0, y0, x0 + bw, y0 + bh)),
                                    fill=tuple(int(c) for c in shade))
        img.save(out / 'imagenet' / split / CLASSES[cls] / f'toy_{split}_{i:05d}.jpg', quality=95)


def make_toy_data(out: str | os.PathLike, seed: int = 0, n_train: int = 64, n_val: int = 16,
                  size: tuple[int, int] = (160, 128), max_objects: int = 3,
                  cls_size: tuple[int, int] = (64, 64)) -> Path:
    """Writes the toy dataset under ``out`` and returns its path.

    The classification set has ``n_train`` / ``n_val`` images of ``cls_size`` and its own
    random stream, so the detection and segmentation scenes of a seed stay as they were.
    """
    out = Path(out)
    rng = np.random.default_rng(seed)
    n_tr = write_split(out, 'train', n_train, rng, size, max_objects, start_id=1)
    n_va = write_split(out, 'val', n_val, rng, size, max_objects, start_id=100000)
    cls_rng = np.random.default_rng([seed, 1])
    write_classification(out, 'train', n_train, cls_rng, cls_size)
    write_classification(out, 'val', n_val, cls_rng, cls_size)
    (out / 'README.txt').write_text(
        f'Synthetic PVT toy data, seed {seed}: {n_train} train / {n_val} val images of '
        f'{size[0]}x{size[1]}, classes {CLASSES}, {n_tr} / {n_va} objects; classification: '
        f'{n_train} / {n_val} images of {cls_size[0]}x{cls_size[1]}, one shape each.\n'
        'Written by tools/data/make_toy_data.py; safe to delete and regenerate.\n')
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/toy', help='output folder (default data/toy)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--train', type=int, default=64, help='training images')
    parser.add_argument('--val', type=int, default=16, help='validation images')
    parser.add_argument('--width', type=int, default=160)
    parser.add_argument('--height', type=int, default=128)
    args = parser.parse_args()
    out = make_toy_data(args.out, args.seed, args.train, args.val, (args.width, args.height))
    print(f'toy data written to {out}: {(out / "README.txt").read_text().strip()}')


if __name__ == '__main__':
    main()
