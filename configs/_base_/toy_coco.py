# The bundled toy detection set (tools/data/make_toy_data.py: 160x128 images of 3 shape
# classes in the COCO layout) as variables the toy configs take with {{_base_.name}}, beside
# a paper config that already defines the dataloaders: data, pipelines (one scale, flips),
# batch 4, and the COCO evaluator on the toy annotations.
toy_data_root = 'data/toy/coco/'
toy_metainfo = dict(classes=('rectangle', 'ellipse', 'triangle'),
                    palette=[(220, 60, 60), (60, 180, 75), (60, 90, 220)])
toy_img_scale = (160, 128)
toy_train_dataloader = dict(
    batch_size=4, num_workers=2, persistent_workers=False,
    dataset=dict(
        data_root=toy_data_root, metainfo=toy_metainfo,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
            dict(type='Resize', scale=toy_img_scale, keep_ratio=True),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackDetInputs'),
        ]))
toy_val_dataloader = dict(
    batch_size=4, num_workers=2, persistent_workers=False,
    dataset=dict(
        data_root=toy_data_root, metainfo=toy_metainfo,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=toy_img_scale, keep_ratio=True),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
            dict(type='PackDetInputs',
                 meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
        ]))
toy_evaluator = dict(ann_file=toy_data_root + 'annotations/instances_val2017.json')
