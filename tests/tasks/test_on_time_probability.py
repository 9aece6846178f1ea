"""The on-time probability of a queued task: smooth in between, exactly 0 or 1 far from the deadline."""

from __future__ import annotations

from orchestrator.tasks.queue import on_time_probability


def test_it_is_one_half_when_the_predicted_start_is_the_deadline():
    assert on_time_probability(5000, 5000, 1000.0) == 0.5


def test_it_is_zero_for_a_start_far_past_the_deadline_without_overflowing():
    # A deep queue behind a short deadline: exp() of the raw exponent would overflow.
    assert on_time_probability(10_000_000, 1000, 1000.0) == 0.0


def test_it_is_one_for_a_start_far_before_the_deadline():
    assert on_time_probability(0, 10_000_000, 1.0) == 1.0


def test_it_is_zero_once_the_deadline_has_passed():
    assert on_time_probability(0, 0, 1000.0) == 0.0
