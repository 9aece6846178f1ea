"""Reserve at admission, settle once at the end: budgets that hold under concurrency.

Admission reserves what a task may spend — its `max_tokens`, clamped to what
remains, and their cost — on the session and on the API token, in the
admission transaction. When the task ends, however it ends, `settle` turns
the reservation into spend (the tokens really produced, the decode time,
their cost) exactly once: a compare-and-swap on the task's `budget_settled`.
Every counter changes through F-expressions, so two tasks finishing at the
same moment are both charged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction

from orchestrator.auth.models import ApiToken
from orchestrator.sessions.models import Session
from orchestrator.sql import Select, db_value, numeric, update
from orchestrator.tasks.models import Task

logger = logging.getLogger("orchestrator.budgets")

ZERO = Decimal(0)


class BudgetExceeded(Exception):
    def __init__(self, policy_label: str, message: str) -> None:
        super().__init__(message)
        self.policy_label = policy_label
        self.message = message


@dataclass(frozen=True)
class Remaining:
    """What is left for new work; None = unlimited. The smaller of session and token."""

    tokens: int | None = None
    time_ms: int | None = None
    cost: Decimal | None = None

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.tokens is not None:
            headers["X-Budget-Tokens-Remaining"] = str(self.tokens)
        if self.time_ms is not None:
            headers["X-Budget-Time-Remaining-Ms"] = str(self.time_ms)
        if self.cost is not None:
            headers["X-Budget-Cost-Remaining"] = format(self.cost.normalize(), "f")
        return headers


@dataclass(frozen=True)
class Grant:
    max_tokens: int
    reserved_tokens: int
    reserved_cost: Decimal
    clamped: bool
    remaining: Remaining


def _smaller(a: int | Decimal | None, b: int | Decimal | None) -> int | Decimal | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _session_left(session: Session | None) -> Remaining:
    if session is None:
        return Remaining()
    return Remaining(session.tokens_budget_remaining, session.time_budget_remaining_ms, session.cost_budget_remaining)


def _token_left(token: ApiToken | None) -> Remaining:
    if token is None:
        return Remaining()
    tokens = (
        None
        if token.tokens_budget is None
        else max(0, token.tokens_budget - token.tokens_spent - token.tokens_reserved)
    )
    cost = None if token.cost_budget is None else max(ZERO, token.cost_budget - token.cost_spent - token.cost_reserved)
    return Remaining(tokens=tokens, cost=cost)


def combine(a: Remaining, b: Remaining) -> Remaining:
    return Remaining(
        tokens=_smaller(a.tokens, b.tokens),  # type: ignore[arg-type]
        time_ms=_smaller(a.time_ms, b.time_ms),  # type: ignore[arg-type]
        cost=_smaller(a.cost, b.cost),  # type: ignore[arg-type]
    )


# What the budgets read, on every admission, attach and end: SQL written once (orchestrator.sql).
_SESSION_FIELDS = (
    "id",
    "tokens_budget",
    "time_budget_ms",
    "cost_budget",
    "tokens_spent",
    "time_spent_ms",
    "cost_spent",
    "tokens_reserved",
    "cost_reserved",
)
TOKEN_FIELDS = ("id", "tokens_budget", "cost_budget", "tokens_spent", "cost_spent", "tokens_reserved", "cost_reserved")
_SESSION = Select(Session, _SESSION_FIELDS, '"id" = %s')
_TOKEN = Select(ApiToken, TOKEN_FIELDS, '"id" = %s')
_SETTLING = Select(
    Task, ("id", "session_id", "token_id", "reserved_tokens", "reserved_cost", "session_started_at"), '"id" = %s'
)


def remaining_for(session_id: str, token_id: int | None) -> Remaining:
    session = _SESSION.first(session_id)
    token = _TOKEN.first(token_id) if token_id is not None else None
    return combine(_session_left(session), _token_left(token))


def reserve(session: Session | None, token: ApiToken | None, max_tokens: int, price_per_token: Decimal) -> Grant:
    """Clamp `max_tokens` to what the budgets leave and hold it.

    On the session and token rows as read in this transaction, after it took
    their locks (admission: the session's turn UPDATE, the token's `TOKEN_LOCKED`); None: absent.
    """
    session_left, token_left = _session_left(session), _token_left(token)
    _refuse_exhausted(session_left, "session")
    _refuse_exhausted(token_left, "API token")
    left = combine(session_left, token_left)
    allowed = max_tokens if left.tokens is None else min(max_tokens, left.tokens)
    if left.cost is not None and price_per_token > 0:
        allowed = min(allowed, int(left.cost / price_per_token))
    if allowed <= 0:
        raise BudgetExceeded("budget.cost", "The remaining cost budget cannot pay for a single token.")
    cost = price_per_token * allowed
    held = f'"tokens_reserved" = "tokens_reserved" + %s, "cost_reserved" = "cost_reserved" + {numeric()}'
    if session is not None:
        update(Session, held, '"id" = %s', [allowed, _cost(Session, cost), session.pk])
    if token is not None:
        update(ApiToken, held, '"id" = %s', [allowed, _cost(ApiToken, cost), token.pk])
    after = Remaining(
        tokens=None if left.tokens is None else left.tokens - allowed,
        time_ms=left.time_ms,
        cost=None if left.cost is None else left.cost - cost,
    )
    return Grant(allowed, allowed, cost, allowed < max_tokens, after)


def _refuse_exhausted(left: Remaining, whose: str) -> None:
    if left.tokens is not None and left.tokens <= 0:
        raise BudgetExceeded("budget.tokens", f"The {whose}'s token budget is spent.")
    if left.time_ms is not None and left.time_ms <= 0:
        raise BudgetExceeded("budget.time", f"The {whose}'s time budget is spent.")
    if left.cost is not None and left.cost <= 0:
        raise BudgetExceeded("budget.cost", f"The {whose}'s cost budget is spent.")


def settle(task_id: str, tokens: int, decode_ms: int, price_per_token: Decimal) -> bool:
    """Turn the task's reservation into spend; True only for the one call that does it.

    The compare-and-swap and the charges commit together: in a transaction of its own when
    called outside one (no savepoint inside one), so a crash cannot mark a task settled
    whose reservation still stands.
    """
    with transaction.atomic(savepoint=False):
        return _settle(task_id, tokens, decode_ms, price_per_token)


def _settle(task_id: str, tokens: int, decode_ms: int, price_per_token: Decimal) -> bool:
    if not update(Task, '"budget_settled" = %s', '"id" = %s AND "budget_settled" = %s', [True, task_id, False]):
        return False
    task = _SETTLING.first(task_id)
    if task is None:  # deleted in between: nothing left to settle against
        return True
    cost = price_per_token * tokens
    spent = (
        '"tokens_spent" = "tokens_spent" + %s, '
        f'"cost_spent" = "cost_spent" + {numeric()}, '
        '"tokens_reserved" = "tokens_reserved" - %s, '
        f'"cost_reserved" = "cost_reserved" - {numeric()}'
    )
    # Only the session row the task was admitted under: a session deleted (or
    # expired and restarted) since then starts fresh and owes nothing for it.
    # The token is charged either way (SPEC §4: DELETE is allowed mid-task).
    where, params = '"id" = %s', [task.session_id]
    if task.session_started_at:
        where += ' AND "created_at" = %s'
        params.append(db_value(Session, "created_at", task.session_started_at))
    session_spend = [tokens, _cost(Session, cost), task.reserved_tokens, _cost(Session, task.reserved_cost)]
    update(Session, '"time_spent_ms" = "time_spent_ms" + %s, ' + spent, where, [decode_ms, *session_spend, *params])
    if task.token_id is not None:
        token_spend = [tokens, _cost(ApiToken, cost), task.reserved_tokens, _cost(ApiToken, task.reserved_cost)]
        update(ApiToken, spent, '"id" = %s', [*token_spend, task.token_id])
    logger.info("budget.settled", extra={"task_id": task_id, "tokens_out": tokens, "decode_ms": decode_ms})
    return True


def _cost(model: type[Session] | type[ApiToken], value: Decimal) -> Any:
    return db_value(model, "cost_reserved", value)


def price_per_token(model_ref: str) -> Decimal:
    from catalog.models import CatalogModel

    per_1k = CatalogModel.objects.filter(id=model_ref).values_list("cost_per_1k_tokens", flat=True).first()
    return (per_1k or ZERO) / 1000
