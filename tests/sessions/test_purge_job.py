"""The beat job removes expired sessions in batches and leaves live ones alone."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from orchestrator.sessions import jobs
from orchestrator.sessions.models import Session
from orchestrator.sessions.services import open_session_turn, purge_expired_sessions
from tests.sessions.conftest import NOW

TTL = timedelta(milliseconds=600_000)
AFTER_EXPIRY = NOW + TTL + timedelta(seconds=1)


@pytest.fixture
def five_expired_two_live(db):
    for index in range(5):
        open_session_turn(f"old-{index}", NOW)
    for index in range(2):
        open_session_turn(f"live-{index}", AFTER_EXPIRY)


def test_it_deletes_expired_sessions_in_batches(five_expired_two_live, django_assert_num_queries):
    # 3 batches of at most 2 (select + delete each), then one empty select
    with django_assert_num_queries(7):
        deleted = purge_expired_sessions(AFTER_EXPIRY, batch_size=2)

    assert deleted == 5
    assert sorted(Session.objects.values_list("pk", flat=True)) == ["live-0", "live-1"]


def test_it_deletes_nothing_when_nothing_expired(five_expired_two_live):
    assert purge_expired_sessions(NOW) == 0
    assert Session.objects.count() == 7


def test_it_spares_a_session_renewed_after_it_was_selected(five_expired_two_live):
    real_expired = Session.objects.expired
    selections: list[int] = []

    def renew_between_select_and_delete(now):
        selections.append(1)
        if len(selections) == 2:  # the DELETE's own expiry condition
            open_session_turn("old-0", now)
        return real_expired(now)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Session.objects, "expired", renew_between_select_and_delete)
        deleted = purge_expired_sessions(AFTER_EXPIRY)

    assert deleted == 4
    assert Session.objects.filter(pk="old-0").exists()


def test_the_job_purges_at_the_current_time(five_expired_two_live):
    with time_machine.travel(AFTER_EXPIRY, tick=False):
        deleted = jobs.purge_expired_sessions()

    assert deleted == 5
    assert Session.objects.count() == 2


def test_the_job_runs_through_celery(five_expired_two_live):
    with time_machine.travel(AFTER_EXPIRY, tick=False):
        result = jobs.purge_expired_sessions.apply()

    assert result.successful()
    assert result.get() == 5
    assert Session.objects.count() == 2


def test_the_job_has_the_name_beat_schedules(settings):
    schedule = settings.CELERY_BEAT_SCHEDULE["purge-expired-sessions"]

    assert jobs.purge_expired_sessions.name == schedule["task"]
