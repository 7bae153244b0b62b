# The bundled toy segmentation set (tools/data/make_toy_data.py: 160x128 images, label PNGs in
# the ADE20K layout with 0 = background) as variables the toy configs take with
# {{_base_.name}} beside a paper config that already defines the dataloaders: the dataset (the
# background learned as one of 4 classes, reduce_zero_label=False), pipelines (random rescale,
# crop and flip; one test scale), batch 4 for training, 1 for validation.
toy_ade_data_root = 'data/toy/ade/ADEChallengeData2016'
toy_ade_img_scale = (160, 128)
toy_ade_dataset = dict(
    type='BaseSegDataset', data_root=toy_ade_data_root, img_suffix='.jpg', seg_map_suffix='.png',
    reduce_zero_label=False,
    metainfo=dict(classes=('background', 'rectangle', 'ellipse', 'triangle'),
                  palette=[[0, 0, 0], [220, 60, 60], [60, 180, 75], [60, 90, 220]]))
toy_ade_train_dataloader = dict(
    batch_size=4, num_workers=2, persistent_workers=False,
    dataset=dict(
        _delete_=True, **toy_ade_dataset,
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', reduce_zero_label=False),
            dict(type='RandomResize', scale=toy_ade_img_scale, ratio_range=(0.8, 1.25),
                 keep_ratio=True),
            dict(type='RandomCrop', crop_size=(128, 160), cat_max_ratio=1.0),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackSegInputs'),
        ]))
toy_ade_val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=False,
    dataset=dict(
        _delete_=True, **toy_ade_dataset,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=toy_ade_img_scale, keep_ratio=True),
            dict(type='LoadAnnotations', reduce_zero_label=False),
            dict(type='PackSegInputs'),
        ]))
