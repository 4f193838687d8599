"""Kidney CT pipeline: segmentation -> lesion classification, error analysis, augmentation study.

- `train_pipeline(cfg, out)`, `load_pipeline(run)`, `predict(run, out, data, split)`: train a
  MONAI UNet segmenter and a DenseNet lesion classifier, write preds.csv / parts.csv;
- `analyse(run)`: confusion matrix, automatic tags, category table, error by parts, HTML page;
- `augment_study(cfg, out)`: real vs classic augmentation vs synthetic slices (seeds, CIs);
- `crop_study(cfg, out)`: the same with a scarce malignant class on native kidney crops;
- `run_segmentation3d(cfg, out)`: 3D kidney segmentation of volumes (test Dice, 95% CI);
- `few_labels_study(cfg, out)`: segmentation with 10% of masks, supervised vs pseudo-labels.
Names are imported on first use (PEP 562) so `genmed --help` stays fast.
"""

from __future__ import annotations

from genmed._lazy import lazy_exports

_EXPORTS = {
    "genmed.pipeline.pipeline": ("Pipeline", "PipelineConfig", "evaluate", "load_pipeline", "predict",
                                 "quick_config", "clinical_config", "train_pipeline", "write_predictions"),
    "genmed.pipeline.segmentation": ("SegConfig", "dice_per_slice", "predict_masks", "train_segmenter"),
    "genmed.pipeline.segmentation3d": ("Seg3DConfig", "Seg3DRunConfig", "run_segmentation3d", "train_segmenter3d"),
    "genmed.pipeline.classifier": ("ClsConfig", "crop_kidneys", "predict_proba", "train_classifier"),
    "genmed.pipeline.cases": ("Cases", "load_cases", "phantom_cases", "split_cases"),
    "genmed.pipeline.analyse": ("analyse", "auto_tags"),
    "genmed.pipeline.augment": ("AugmentConfig", "augment_study"),
    "genmed.pipeline.synthetic": ("model_generator", "run_generator", "train_generators"),
    "genmed.pipeline.fewlabels": ("FewLabelsConfig", "few_labels_study"),
    "genmed.pipeline.crop_study": ("CropStudyConfig", "crop_study"),
    "genmed.pipeline.demo": ("run_demo_stage",),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
