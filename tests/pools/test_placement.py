"""Placement rules and tie-breaks, table-driven (SPEC §3.3)."""

from dataclasses import replace

import pytest

from pools.placement import Decision, Mode, Outcome, PlacementRequest, PoolView, Strategy, place


def pool(pool_id, **fields):
    defaults = {"node_id": f"n-{pool_id}", "engine": "llamacpp", "models": frozenset({"m"}), "slots_total": 4}
    return PoolView(pool_id=pool_id, **{**defaults, **fields})


REQUEST = PlacementRequest(model_ref="m", engine="llamacpp", ctx=2048)


@pytest.mark.parametrize(
    ("excluded", "reason"),
    [
        (pool("x", node_online=False), "node_not_online"),
        (pool("x", ready=False), "not_ready"),
        (pool("x", draining=True), "draining"),
        (pool("x", engine="vllm"), "engine_mismatch"),
        (pool("x", models=frozenset({"other"})), "model_not_served"),
        (pool("x", ctx_max=1024), "ctx_too_small"),
        (pool("x", active_leases=4), "no_free_slot"),
    ],
)
def test_each_filter_excludes_a_pool_and_says_why(excluded, reason):
    decision = place(REQUEST, [excluded, pool("ok")])

    assert decision.pool_id == "ok"
    assert decision.filtered == {"x": reason}
    assert decision.candidates == ("ok",)


def test_a_pool_without_a_reported_ctx_accepts_any_ctx():
    assert place(REQUEST, [pool("a", ctx_max=None)]).pool_id == "a"


def test_ctx_equal_to_the_pools_maximum_fits():
    assert place(REQUEST, [pool("a", ctx_max=2048)]).pool_id == "a"


def test_avoided_pools_are_never_chosen():
    request = replace(REQUEST, avoid_pools=("a",))

    decision = place(request, [pool("a", active_leases=0), pool("b", active_leases=3)])

    assert decision.pool_id == "b"
    assert decision.filtered == {"a": "avoided"}


@pytest.mark.parametrize(
    ("mask", "expected"),
    [("0,1", "b"), ("0", "a"), ("2", None)],
)
def test_a_required_device_mask_must_match_exactly(mask, expected):
    request = replace(REQUEST, require_device_mask=mask)

    decision = place(request, [pool("a", device_mask="0"), pool("b", device_mask="0,1")])

    assert decision.pool_id == expected


def test_pin_chooses_only_the_pinned_pool():
    request = replace(REQUEST, mode=Mode.PIN, pin_pool_id="b")

    decision = place(request, [pool("a"), pool("b", active_leases=3)])

    assert decision.pool_id == "b"
    assert decision.pinned is True
    assert decision.filtered["a"] == "not_pinned"


def test_pin_never_falls_back_when_the_pinned_pool_is_full():
    request = replace(REQUEST, mode=Mode.PIN, pin_pool_id="b")

    decision = place(request, [pool("a"), pool("b", active_leases=4)])

    assert decision.outcome == Outcome.NO_CAPACITY
    assert decision.pool_id is None


def test_pin_to_an_unready_pool_has_no_candidate():
    request = replace(REQUEST, mode=Mode.PIN, pin_pool_id="b")

    assert place(request, [pool("a"), pool("b", ready=False)]).outcome == Outcome.NO_CANDIDATE


def test_prefer_uses_a_preferred_pool_when_one_has_room():
    request = replace(REQUEST, mode=Mode.PREFER, prefer_pools=("b", "c"))

    decision = place(request, [pool("a"), pool("b", active_leases=3), pool("c", active_leases=4)])

    assert decision.pool_id == "b"
    assert decision.fallback is False


def test_prefer_falls_back_to_all_candidates_when_allowed():
    request = replace(REQUEST, mode=Mode.PREFER, prefer_pools=("b",))

    decision = place(request, [pool("a"), pool("b", active_leases=4)])

    assert decision.pool_id == "a"
    assert decision.fallback is True


def test_prefer_without_fallback_waits_for_a_preferred_pool():
    request = replace(REQUEST, mode=Mode.PREFER, prefer_pools=("b",), allow_fallback=False)

    decision = place(request, [pool("a"), pool("b", active_leases=4)])

    assert decision.outcome == Outcome.NO_CAPACITY
    assert decision.pool_id is None


def test_prefer_without_fallback_and_no_preferred_pool_serving_has_no_candidate():
    request = replace(REQUEST, mode=Mode.PREFER, prefer_pools=("zzz",), allow_fallback=False)

    assert place(request, [pool("a")]).outcome == Outcome.NO_CANDIDATE


@pytest.mark.parametrize(
    ("pools", "session_pool", "winner"),
    [
        # most free slots first
        ([pool("a", active_leases=3), pool("b", active_leases=1)], None, "b"),
        # then most free VRAM
        ([pool("a", vram_free_bytes=10), pool("b", vram_free_bytes=20)], None, "b"),
        # unknown VRAM counts as none
        ([pool("a", vram_free_bytes=None), pool("b", vram_free_bytes=1)], None, "b"),
        # then session affinity
        ([pool("a"), pool("b")], "b", "b"),
        # affinity never beats free slots
        ([pool("a", active_leases=0), pool("b", active_leases=2)], "b", "a"),
        # then pool_id ascending
        ([pool("b"), pool("a")], None, "a"),
    ],
)
def test_least_loaded_tie_breaks_in_order(pools, session_pool, winner):
    request = replace(REQUEST, session_pool_id=session_pool)

    assert place(request, pools, Strategy.LEAST_LOADED).pool_id == winner


def test_round_robin_cycles_through_candidates_in_id_order():
    pools = [pool("c"), pool("a"), pool("b")]

    winners = [place(REQUEST, pools, Strategy.ROUND_ROBIN, round_robin_offset=i).pool_id for i in range(4)]

    assert winners == ["a", "b", "c", "a"]


def test_random_is_deterministic_for_a_seed_and_spreads_over_seeds():
    pools = [pool("a"), pool("b"), pool("c")]

    same = {place(REQUEST, pools, Strategy.RANDOM, seed=42).pool_id for _ in range(10)}
    spread = {place(REQUEST, pools, Strategy.RANDOM, seed=seed).pool_id for seed in range(50)}

    assert len(same) == 1
    assert spread == {"a", "b", "c"}


def test_the_same_inputs_give_the_same_decision():
    pools = [pool("a", active_leases=1), pool("b", ready=False), pool("c")]

    assert place(REQUEST, pools) == place(REQUEST, list(reversed(pools)))


def test_no_pool_at_all_is_no_candidate():
    decision = place(REQUEST, [])

    assert decision == Decision(Outcome.NO_CANDIDATE, None, Strategy.LEAST_LOADED, (), {})


def test_a_full_but_serving_pool_means_wait_not_unavailable():
    assert place(REQUEST, [pool("a", active_leases=4)]).outcome == Outcome.NO_CAPACITY


def test_free_slots_come_from_leases():
    assert pool("a", slots_total=4, active_leases=3).free_slots == 1
    assert pool("a", slots_total=4, active_leases=9).free_slots == 0


def test_the_decision_record_lists_candidates_filters_and_winner():
    decision = place(REQUEST, [pool("a"), pool("b", ready=False)])

    assert decision.log_fields() == {
        "outcome": "placed",
        "winner": "a",
        "strategy": "least-loaded",
        "candidates": ["a"],
        "filters": {"b": "not_ready"},
        "pinned": False,
        "fallback": False,
    }
