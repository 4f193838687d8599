"""Translation settings: refused before any training."""

from __future__ import annotations

import pytest

from genmed.apps.translate import TranslateConfig, clinical_translate_config
from genmed.errors import UserError


def test_translate_config_refuses_inconsistent_settings():
    with pytest.raises(UserError, match="needs patch"):
        TranslateConfig(lesion_crop_fraction=0.5)
    with pytest.raises(UserError, match="multiple of 8"):
        clinical_translate_config(patch=60)
    with pytest.raises(UserError, match="method"):
        TranslateConfig(methods=("identity", "cyclegan"))
    assert clinical_translate_config(lesion_crop_fraction=0.5).lesion_crop_fraction == 0.5
    with pytest.raises(UserError, match="train_lesion_prob"):
        TranslateConfig(train_lesion_prob=1.5)
    with pytest.raises(UserError, match="lesion_weight"):
        TranslateConfig(lesion_weight=-1.0)
