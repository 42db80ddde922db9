"""The segmentation config: buckets, the explainable score, the version."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.intake.segmentation import CONFIG_PATH, load_segmentation

SEG = load_segmentation()


@pytest.mark.parametrize(
    ("dpd", "bucket"),
    [
        (0, "current"),
        (1, "1-30"),
        (30, "1-30"),
        (31, "31-60"),
        (90, "61-90"),
        (180, "91-180"),
        (181, "180+"),
        (36500, "180+"),
    ],
)
def test_default_buckets(dpd, bucket) -> None:
    assert SEG.bucket(dpd) == bucket


def test_the_config_is_versioned_and_edited_buckets_apply(tmp_path) -> None:
    text = (
        CONFIG_PATH.read_text()
        .replace('version = "', 'version = "test-')
        .replace("max_dpd = 30", "max_dpd = 15")
    )
    text = text.replace('name = "31-60"\nmin_dpd = 31', 'name = "16-60"\nmin_dpd = 16')
    path = tmp_path / "segmentation.toml"
    path.write_text(text)
    edited = load_segmentation(path)
    assert edited.version.startswith("test-") and edited.version != SEG.version
    assert edited.bucket(20) == "16-60"


def test_duplicate_bucket_names_are_refused(tmp_path) -> None:
    path = tmp_path / "segmentation.toml"
    path.write_text(CONFIG_PATH.read_text().replace('name = "31-60"', 'name = "1-30"'))
    with pytest.raises(ValueError, match="unique"):
        load_segmentation(path)


def test_each_input_says_what_it_added() -> None:
    priority = SEG.explain(45, Decimal("9999.00"), True, Decimal("2500.00"), 3)
    factors = {f.factor: f for f in priority.factors}
    assert factors["dpd_bucket"].input == "31-60" and factors["dpd_bucket"].points == 2.0
    assert factors["overdue_amount"].input == "9999.00" and factors["overdue_amount"].points == 2.0
    assert factors["overdue_installments"].input == "4.0" and factors["overdue_installments"].points == 1.0
    assert factors["recent_payment"].input == "3d" and factors["recent_payment"].points == -0.75
    assert factors["vulnerable"].points == -1.0
    assert priority.score == 3.25


def test_factors_that_do_not_apply_are_left_out() -> None:
    factors = [f.factor for f in SEG.explain(10, Decimal(100), False, None, 90).factors]
    assert factors == ["dpd_bucket", "overdue_amount"]


@given(
    dpd=st.integers(0, 36500),
    overdue=st.decimals(min_value=0, max_value=10**12, places=2),
    vulnerable=st.booleans(),
    installment=st.one_of(st.none(), st.decimals(min_value=0, max_value=10**6, places=2)),
    days=st.one_of(st.none(), st.integers(-5, 400)),
)
def test_the_factors_add_up_to_the_score(dpd, overdue, vulnerable, installment, days) -> None:
    priority = SEG.explain(dpd, overdue, vulnerable, installment, days)
    assert priority.score == round(sum(f.points for f in priority.factors), 3)
    assert priority.bucket == SEG.bucket(dpd)
    assert SEG.priority(dpd, overdue, vulnerable) == SEG.explain(dpd, overdue, vulnerable).score


def test_later_buckets_and_bigger_arrears_rank_higher_and_care_comes_first() -> None:
    base = SEG.explain(10, Decimal(1000), False).score
    assert SEG.explain(100, Decimal(1000), False).score > base
    assert SEG.explain(10, Decimal(10000), False).score > base
    assert SEG.explain(10, Decimal(1000), False, Decimal(100)).score > base
    assert SEG.explain(10, Decimal(1000), True).score < base
    assert SEG.explain(10, Decimal(1000), False, None, 5).score < base
