"""The batching decision is a pure function: no event loop, no clock."""

import pytest

from kerasserve.batching import BatchPolicy, decide

POLICY = BatchPolicy(max_batch_size=8, max_wait_s=0.010, max_queue=100)


def test_empty_queue_waits_for_an_arrival():
    d = decide(POLICY, now=5.0, queue_len=0, oldest_enqueued_at=None, arrival_gap_s=0.001)
    assert not d.run
    assert d.wait_s is None


def test_lone_request_with_no_traffic_history_runs_at_once():
    d = decide(POLICY, now=1.0, queue_len=1, oldest_enqueued_at=1.0, arrival_gap_s=None)
    assert d.run
    assert d.take == 1


def test_lone_request_at_low_load_runs_at_once():
    # Arrivals 50 ms apart: nobody else is expected within the 10 ms bound.
    d = decide(POLICY, now=1.0, queue_len=1, oldest_enqueued_at=1.0, arrival_gap_s=0.050)
    assert d.run


def test_under_load_waits_for_the_batch_to_fill_but_only_up_to_the_bound():
    d = decide(POLICY, now=1.002, queue_len=3, oldest_enqueued_at=1.0, arrival_gap_s=0.001)
    assert not d.run
    assert d.wait_s == pytest.approx(0.008)


def test_wait_bound_is_measured_from_the_oldest_item():
    d = decide(POLICY, now=1.0105, queue_len=3, oldest_enqueued_at=1.0, arrival_gap_s=0.001)
    assert d.run
    assert d.take == 3


def test_full_batch_runs_at_once_and_takes_at_most_max():
    d = decide(POLICY, now=1.0, queue_len=20, oldest_enqueued_at=1.0, arrival_gap_s=0.0001)
    assert d.run
    assert d.take == 8


def test_closing_runs_what_is_left_without_waiting():
    d = decide(
        POLICY, now=1.0, queue_len=2, oldest_enqueued_at=1.0, arrival_gap_s=0.0001, closing=True
    )
    assert d.take == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_batch_size": 0}, "max_batch_size must be an integer >= 1, got 0"),
        ({"max_batch_size": 2.5}, "max_batch_size must be an integer >= 1, got 2.5"),
        ({"max_wait_s": -1}, "max_wait_s must be >= 0, got -1"),
        ({"max_queue": 0}, "max_queue must be an integer >= 1, got 0"),
    ],
)
def test_policy_rejects_bad_settings_quoting_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        BatchPolicy(**kwargs)


def test_a_tuned_limit_below_the_maximum_runs_a_batch_as_soon_as_it_fills():
    d = decide(POLICY, now=1.0, queue_len=5, oldest_enqueued_at=1.0, arrival_gap_s=0.001, limit=4)
    assert d.run
    assert d.take == 4


def test_a_tuned_limit_never_exceeds_the_maximum():
    d = decide(POLICY, now=1.0, queue_len=50, oldest_enqueued_at=1.0, arrival_gap_s=0.001, limit=64)
    assert d.take == 8


def test_with_nothing_on_its_way_a_lone_item_runs_even_when_arrivals_are_frequent():
    # Regression: a lone closed-loop client (its next request waits for this answer) made
    # arrivals look 4 ms apart, so every request waited for company that could not come.
    d = decide(POLICY, now=1.0, queue_len=1, oldest_enqueued_at=1.0, arrival_gap_s=0.004, coming=0)
    assert d.run
    assert d.take == 1


def test_with_items_on_their_way_the_batch_waits_up_to_the_bound():
    d = decide(POLICY, now=1.002, queue_len=1, oldest_enqueued_at=1.0, arrival_gap_s=1.0, coming=2)
    assert not d.run
    assert d.wait_s == pytest.approx(0.008)
    late = decide(
        POLICY, now=1.011, queue_len=1, oldest_enqueued_at=1.0, arrival_gap_s=None, coming=2
    )
    assert late.run
