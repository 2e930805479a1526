"""A calibration whose fitted efficiencies hit the clamp says so (seen as a new user: with
two threads on a busy machine, eight of twelve classes came out at exactly 4.0)."""

from flopmeter.hardware.calibrate import MAX_EFFICIENCY, MIN_EFFICIENCY, clamp_warning


def test_clamped_efficiencies_are_named() -> None:
    text = clamp_warning({"matmul": 0.9, "data": MAX_EFFICIENCY, "pooling": MIN_EFFICIENCY})
    assert "WARNING: the efficiency of data, pooling hit the limit (0.01 or 4.0)" in text
    assert "--threads 1" in text


def test_a_sane_calibration_has_no_warning() -> None:
    assert clamp_warning({"matmul": 0.9, "conv": 1.3, "pooling": 0.02}) == ""
