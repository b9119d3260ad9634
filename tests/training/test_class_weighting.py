"""train.class_weighting: the loss weights each scheme derives from the card's table."""
import json
import math

import pytest
import torch

from segrepro.data.camvid import CLASSES
from segrepro.data.class_weights import WEIGHTING_SCHEMES
from segrepro.errors import SegreproError
from segrepro.training.train import class_weights


@pytest.fixture
def card_dir(tmp_path):
    table = {name: 0.25 * (i + 1) for i, name in enumerate(CLASSES)}
    (tmp_path / "card.json").write_text(json.dumps({"class_weights": {"median_frequency": table}}))
    return tmp_path, table


def test_none_is_unweighted(card_dir):
    assert class_weights(card_dir[0], "none", torch.device("cpu")) is None


def test_median_frequency_is_the_table_in_class_order(card_dir):
    path, table = card_dir
    w = class_weights(path, "median_frequency", torch.device("cpu"))
    assert w.dtype == torch.float32
    assert w.tolist() == pytest.approx([table[c] for c in CLASSES], rel=1e-7)


def test_sqrt_median_frequency_is_the_square_root_of_the_table(card_dir):
    path, table = card_dir
    w = class_weights(path, "sqrt_median_frequency", torch.device("cpu"))
    assert w.tolist() == pytest.approx([math.sqrt(table[c]) for c in CLASSES], rel=1e-7)
    # softer: the ratio of the extremes shrinks to its square root
    assert float(w.max() / w.min()) == pytest.approx(math.sqrt(max(table.values()) / min(table.values())))


def test_every_scheme_has_a_loss(card_dir):
    for scheme in WEIGHTING_SCHEMES:
        class_weights(card_dir[0], scheme, torch.device("cpu"))


def test_unknown_scheme_and_missing_table_name_the_fix(tmp_path, card_dir):
    with pytest.raises(SegreproError, match="unknown"):
        class_weights(card_dir[0], "inverse", torch.device("cpu"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "card.json").write_text("{}")
    with pytest.raises(SegreproError, match="rerun `dvc repro preprocess`"):
        class_weights(tmp_path / "empty", "sqrt_median_frequency", torch.device("cpu"))
