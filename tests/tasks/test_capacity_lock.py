"""PostgreSQL: the capacity lock, the last lock admission takes, and what it waits for under it.

Admission locks its session and token rows (the turn, the budget) before the
advisory capacity lock, so across web processes only the count, the room made
and the insert run one at a time. Under the lock it must then never wait for a
row that another admission, itself waiting for the lock, may hold: a drop-lru
victim whose rows are held is passed over. Run by CI's PostgreSQL pass.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.db.utils import OperationalError
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orchestrator.auth.models import ApiToken, Role
from orchestrator.auth.services import issue_token
from orchestrator.sessions.models import Session
from orchestrator.sessions.services import open_session_turn
from orchestrator.sql import execute
from orchestrator.tasks import claims, tally
from orchestrator.tasks.admission import CAPACITY_LOCK_KEY
from orchestrator.tasks.models import Task, TaskState
from orchestrator.tasks.queue import queue_counts
from pools.models import Pool
from tests.conftest import assert_envelope
from tests.support.processes import wait_until
from tests.tasks.conftest import add_pool, queued_task, task_body

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _needs_postgres() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs DATABASE_URL (PostgreSQL): SQLite runs one write transaction at a time")


@pytest.fixture(autouse=True)
def _pool() -> None:
    add_pool("p1", "http://127.0.0.1:9", slots=1)


def submit(token: str, **overrides: Any) -> Any:
    """POST /v2/tasks on this thread's own connection, closed afterwards."""
    try:
        return Client().post(
            "/v2/tasks",
            task_body(**overrides),
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )
    finally:
        connections.close_all()


class InThread:
    """A call on a thread of its own; its result, or what it raised, once it is done."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self.thread.start()

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            self.result = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc

    def join(self, timeout: float = 10) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the admission is still waiting"
        if self.error is not None:
            raise self.error
        return self.result


@contextmanager
def other_transaction() -> Iterator[Any]:
    """A cursor on a second connection, in a transaction of its own (rolled back at the end)."""
    other = connections.create_connection("default")
    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:
            yield cursor
        other.rollback()
    finally:
        other.close()


def drop_lru(settings: Any, capacity: int) -> str:
    """A queue of `capacity` under drop-lru; a client token."""
    settings.ORCHD_ADMISSION_CAPACITY = capacity
    settings.ORCHD_ADMISSION_POLICY = "drop-lru"
    return issue_token("bob", Role.CLIENT).value


def admitted_while_held(token: str, task_id: str) -> Any:
    """The answer to a new admission (session s-new) while another transaction holds `task_id`'s row."""
    with other_transaction() as cursor:
        cursor.execute(f'SELECT 1 FROM {Task._meta.db_table} WHERE "id" = %s FOR UPDATE', [task_id])  # noqa: S608
        return InThread(lambda: submit(token, session_id="s-new")).join()


def waiting_for_capacity_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = %s",
            [CAPACITY_LOCK_KEY],
        )
        return bool(cursor.fetchone()[0])


def assert_row_held(cursor: Any, table: str, key: Any) -> None:
    """Another transaction holds the row; this one keeps what it holds (a savepoint takes the error)."""
    cursor.execute("SAVEPOINT probe")
    with pytest.raises(OperationalError, match="could not obtain lock"):
        cursor.execute(f'SELECT 1 FROM {table} WHERE "id" = %s FOR UPDATE NOWAIT', [key])  # noqa: S608 - a constant
    cursor.execute("ROLLBACK TO SAVEPOINT probe")


def test_admission_takes_its_session_and_token_rows_before_the_capacity_lock() -> None:
    token = issue_token("bob", Role.CLIENT)
    open_session_turn("s-held", timezone.now())

    with other_transaction() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CAPACITY_LOCK_KEY])
        admission = InThread(lambda: submit(token.value, session_id="s-held"))
        wait_until(waiting_for_capacity_lock, timeout_s=10, what="the admission to wait for the capacity lock")

        # While it waits for the lock, the admission holds its turn and its budget's rows.
        assert_row_held(cursor, Session._meta.db_table, "s-held")
        assert_row_held(cursor, ApiToken._meta.db_table, token.token.pk)
        assert admission.thread.is_alive()
    # The capacity lock went with the other transaction.

    assert admission.join().status_code == 202
    assert Session.objects.get(id="s-held").turns == 2


def test_a_drop_lru_victim_whose_session_another_transaction_holds_is_dropped_and_settled_after(
    settings: Any,
) -> None:
    token = drop_lru(settings, capacity=2)
    older = submit(token, session_id="s-busy", priority="batch").json()["task_id"]
    newer = submit(token, session_id="s-idle", priority="batch").json()["task_id"]

    with other_transaction() as cursor:
        # As an admission of s-busy waiting for the capacity lock holds its session's row.
        cursor.execute(f'SELECT 1 FROM {Session._meta.db_table} WHERE "id" = %s FOR UPDATE', ["s-busy"])  # noqa: S608
        admission = InThread(lambda: submit(token, session_id="s-new"))
        # The drop commits without waiting for the row; releasing the reservation waits for it.
        wait_until(lambda: Task.objects.get(id=older).state == TaskState.DROPPED, timeout_s=10, what="the drop")
        assert Session.objects.get(id="s-busy").tokens_reserved == 8
        assert admission.thread.is_alive()
    response = admission.join()

    assert response.status_code == 202
    assert Task.objects.get(id=newer).state == TaskState.QUEUED
    assert Session.objects.get(id="s-busy").tokens_reserved == 0  # the victim's reservation released


def test_a_held_victim_is_passed_over_for_the_next_of_its_priority(settings: Any) -> None:
    token = drop_lru(settings, capacity=3)
    held, free = (submit(token, session_id=f"s-{i}", priority="batch").json()["task_id"] for i in range(2))
    interactive = submit(token, session_id="s-2").json()["task_id"]

    # A dispatcher claiming it holds its row: it is leaving the queue anyway.
    response = admitted_while_held(token, held)

    assert response.status_code == 202
    assert Task.objects.get(id=free).state == TaskState.DROPPED
    assert Task.objects.get(id=held).state == Task.objects.get(id=interactive).state == TaskState.QUEUED


def test_a_higher_priority_is_never_dropped_while_a_lower_one_is_held(settings: Any) -> None:
    token = drop_lru(settings, capacity=2)
    batch = submit(token, session_id="s-0", priority="batch").json()["task_id"]
    interactive = submit(token, session_id="s-1").json()["task_id"]

    response = admitted_while_held(token, batch)

    assert_envelope(response, 429, "QUEUE_FULL_DROP_LRU")
    assert Task.objects.get(id=batch).state == Task.objects.get(id=interactive).state == TaskState.QUEUED


def test_drop_lru_with_every_victim_held_answers_429_without_waiting(settings: Any) -> None:
    token = drop_lru(settings, capacity=1)
    queued = submit(token, session_id="s-busy", priority="batch").json()["task_id"]

    response = admitted_while_held(token, queued)

    assert_envelope(response, 429, "QUEUE_FULL_DROP_LRU")
    assert Task.objects.get(id=queued).state == TaskState.QUEUED


def test_concurrent_admissions_never_pass_the_capacity(settings: Any) -> None:
    settings.ORCHD_ADMISSION_CAPACITY = 5
    tokens = [issue_token(f"client-{i}", Role.CLIENT).value for i in range(4)]
    start = threading.Barrier(12)

    def admit(index: int) -> Callable[[], int]:
        def call() -> int:
            start.wait(timeout=10)
            return int(submit(tokens[index % 4], session_id=f"s-{index}").status_code)

        return call

    admissions = [InThread(admit(index)) for index in range(12)]
    codes = sorted(admission.join(timeout=30) for admission in admissions)

    assert codes == [202] * 5 + [429] * 7
    assert Task.objects.filter(state=TaskState.QUEUED).count() == 5
    # Every rejected admission's turn and reservation rolled back.
    assert sorted(Session.objects.values_list("tokens_reserved", flat=True)) == [8] * 5


def test_under_the_capacity_lock_admission_only_counts_the_queue_and_inserts() -> None:
    token = issue_token("bob", Role.CLIENT).value
    submit(token, session_id="s-1")  # a session to renew, a service time to read: the common case

    with CaptureQueriesContext(connection) as queries:
        assert (
            Client()
            .post(
                "/v2/tasks",
                task_body(session_id="s-1"),
                content_type="application/json",
                headers={"Authorization": f"Bearer {token}"},
            )
            .status_code
            == 202
        )

    statements = [query["sql"] for query in queries.captured_queries]
    locked = next(i for i, sql in enumerate(statements) if "pg_advisory_xact_lock" in sql)
    assert any(Session._meta.db_table in sql for sql in statements[:locked])  # the turn, before
    assert any(ApiToken._meta.db_table in sql for sql in statements[:locked])  # the token row, before
    under = statements[locked + 1 :]
    assert len(under) == 3, under
    assert under[0].startswith("SELECT ")  # the queue's length and position, from the tally
    assert tally.DELTAS in under[0]
    assert under[1].startswith(f'INSERT INTO "{Task._meta.db_table}"')
    assert under[2] == "COMMIT"


def test_folds_running_throughout_concurrent_admissions_keep_the_count_exact(settings: Any) -> None:
    settings.ORCHD_ADMISSION_CAPACITY = 10
    tokens = [issue_token(f"client-{i}", Role.CLIENT).value for i in range(4)]
    start = threading.Barrier(21)
    done = threading.Event()

    def admit(index: int) -> Callable[[], int]:
        def call() -> int:
            start.wait(timeout=10)
            return int(submit(tokens[index % 4], session_id=f"s-{index}").status_code)

        return call

    def fold() -> int:
        folded = 0
        start.wait(timeout=10)
        try:
            while not done.is_set():
                folded += tally.fold()
        finally:
            connections.close_all()
        return folded

    folding = InThread(fold)
    admissions = [InThread(admit(index)) for index in range(20)]
    codes = sorted(admission.join(timeout=30) for admission in admissions)
    done.set()

    assert codes == [202] * 10 + [429] * 10
    assert folding.join() > 0
    counts = queue_counts("tiny", "llamacpp", 0, timezone.now())
    assert (counts.queued, counts.ahead) == (10, 10) == (Task.objects.filter(state=TaskState.QUEUED).count(),) * 2


def test_a_second_fold_passes_while_one_runs() -> None:
    token = issue_token("bob", Role.CLIENT).value
    submit(token, session_id="s-1")

    with other_transaction() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [tally.FOLD_LOCK_KEY])
        assert tally.fold() == 0  # at once, not waiting
    assert tally.fold() == 1
    assert queue_counts("tiny", "llamacpp", 0, timezone.now()).queued == 1


def test_admissions_fast_path_lease_does_not_wait_for_a_pool_row_another_transaction_holds() -> None:
    now = timezone.now()
    task = queued_task("t-fast", now)

    with other_transaction() as cursor:
        # As a dispatcher pass that leased a slot there and waits for a session row.
        cursor.execute(f'SELECT 1 FROM {Pool._meta.db_table} WHERE "id" = %s FOR UPDATE', ["p1"])  # noqa: S608
        with transaction.atomic():
            execute("SET LOCAL statement_timeout = '5s'")  # waiting would fail here, not hang
            assert claims.lease_for_new_task(task, "owner", now, claims.pool_rows(), None, 0) is None
    assert Pool.objects.get(id="p1").active_leases == 0

    with transaction.atomic():
        assert claims.lease_for_new_task(task, "owner", now, claims.pool_rows(), None, 0) == "p1"
    assert Pool.objects.get(id="p1").active_leases == 1
