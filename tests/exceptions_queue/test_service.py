"""The queue's service on SQLite and PostgreSQL: claims, leases, labels, QC, budgets."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import Database
from app.tickets import views
from exceptions_queue import service, states
from exceptions_queue.errors import InvalidInput, TicketConflict, TicketNotFound
from exceptions_queue.tables import Label, SampleDraw, Ticket, TicketEvent
from storage.base import utcnow
from tests.exceptions_queue.helpers import (
    actor,
    model_id,
    open_incident,
    pin_ingest_clock,
    post,
    prediction_ids,
    seed,
    tickets,
)
from tests.factories import create_model_with_reference, predictions

ANA, BOB, CID = actor("ana"), actor("bob"), actor("cid")
LEASE = dt.timedelta(minutes=5)


def claim(db: Database, who: service.Actor, now: dt.datetime | None = None, **kw: object) -> Ticket:
    with db.session() as s:
        t = service.claim(s, actor=who, now=now or utcnow(), lease=LEASE, **kw)  # type: ignore[arg-type]
    assert t is not None
    return t


def resolved(
    db: Database, who: service.Actor, t: Ticket, label: object = "churn", **kw: object
) -> service.Resolved:
    with db.session() as s:
        return service.resolve(
            s,
            ticket_id=t.id,
            actor=who,
            lease_token=kw.pop("token", t.lease_token),  # type: ignore[arg-type]
            labels=[service.LabelIn(label)],
            note=None,
            now=kw.pop("now", utcnow()),  # type: ignore[arg-type]
        )


def resolve(
    db: Database, who: service.Actor, t: Ticket, label: object = "churn", **kw: object
) -> Ticket:
    return resolved(db, who, t, label, **kw).ticket


def events(db: Database, ticket_id: int) -> list[tuple[str, str | None, str]]:
    with db.session(readonly=True) as s:
        return [
            (e.action, e.from_status, e.to_status)
            for e in s.scalars(
                select(TicketEvent)
                .where(TicketEvent.ticket_id == ticket_id)
                .order_by(TicketEvent.id)
            )
        ]


def current_labels(db: Database) -> list[tuple[int | None, object, str]]:
    with db.session(readonly=True) as s:
        return [
            (lab.prediction_id, lab.label, lab.source)
            for lab in s.scalars(select(Label).where(Label.status == "current").order_by(Label.id))
        ]


def test_claims_go_by_priority_then_age(client: TestClient, db: Database) -> None:
    seed(client, 3)
    open_incident(db, sample=tuple(prediction_ids(db)[:2]))
    order = [claim(db, ANA).kind for _ in range(4)]
    assert order == ["drift", "low_confidence", "low_confidence", "low_confidence"]
    with db.session() as s:
        assert service.claim(s, actor=ANA, now=utcnow()) is None


def test_claim_filters_by_model_and_kind(client: TestClient, db: Database) -> None:
    seed(client, 2)
    seed(client, 2, name="other", prefix="o")
    other = model_id(db, "other")
    t = claim(db, ANA, model_id=other)
    assert t.model_id == other
    with db.session() as s:
        assert service.claim(s, actor=ANA, now=utcnow(), kind="drift") is None


def test_claiming_records_the_lease_and_an_event(client: TestClient, db: Database) -> None:
    seed(client, 1)
    now = utcnow()
    t = claim(db, ANA, now)
    assert (t.status, t.claimed_by, t.lease_expires_at) == ("claimed", "ana", now + LEASE)
    assert t.lease_token and len(t.lease_token) == 32
    assert events(db, t.id) == [("open", None, "open"), ("claim", "open", "claimed")]
    # (on PostgreSQL the claim's own statement writes this event: same row as on SQLite)
    with db.session(readonly=True) as s:
        event = s.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == t.id, TicketEvent.action == "claim")
        ).one()
    assert (event.actor, event.at, event.payload) == (
        ANA.name,
        now,
        {"lease_expires_at": (now + LEASE).isoformat()},
    )


def test_an_expired_lease_is_taken_by_the_next_claim(client: TestClient, db: Database) -> None:
    seed(client, 1)
    now = utcnow()
    first = claim(db, ANA, now)
    later = now + LEASE + dt.timedelta(seconds=1)
    second = claim(db, BOB, later)
    assert second.id == first.id
    assert (second.claimed_by, second.abandon_count, second.last_abandoned_by) == (
        "bob",
        1,
        ANA.name,
    )
    assert events(db, first.id)[-2:] == [
        ("expire", "claimed", "open"),
        ("claim", "open", "claimed"),
    ]
    with pytest.raises(TicketConflict, match="held by another reviewer"):
        resolve(db, ANA, first, now=later)


def test_the_holder_loses_an_expired_lease(client: TestClient, db: Database) -> None:
    seed(client, 1)
    now = utcnow()
    t = claim(db, ANA, now)
    with pytest.raises(TicketConflict, match="expired") as err:
        resolve(db, ANA, t, now=now + LEASE)
    assert err.value.details == [{"reason": "lease_expired", "status": "claimed"}]


def test_the_reaper_returns_expired_tickets(client: TestClient, db: Database) -> None:
    seed(client, 3)
    now = utcnow()
    held = [claim(db, ANA, now) for _ in range(2)]
    with db.session() as s:
        assert service.expire_leases(s, now=now + LEASE / 2) == 0
    with db.session() as s:
        assert service.expire_leases(s, now=now + LEASE + dt.timedelta(seconds=1)) == 2
    for t in held:
        [row] = tickets(db, id=t.id)
        assert (row.status, row.claimed_by, row.lease_token, row.abandon_count) == (
            "open",
            None,
            None,
            1,
        )
        assert events(db, t.id)[-1] == ("expire", "claimed", "open")


def test_abandoned_tickets_are_escalated(client: TestClient, db: Database) -> None:
    seed(client, 2)
    base = states.PRIORITY["low_confidence"]
    first = claim(db, ANA)
    for n in range(1, states.ESCALATE_AFTER + 1):
        with db.session() as s:
            t = service.release(s, ticket_id=first.id, actor=ANA, lease_token=None, now=utcnow())
        assert t.abandon_count == n
        if n < states.ESCALATE_AFTER:
            again = claim(db, ANA)
            assert again.id == first.id  # still the oldest of equal priority
    assert t.priority == base + states.ESCALATION_STEP
    assert states.is_escalated(t.abandon_count)


def test_guards_name_the_reason(client: TestClient, db: Database) -> None:
    seed(client, 1)
    t = claim(db, ANA)
    with pytest.raises(TicketConflict, match="does not match"):
        resolve(db, ANA, t, token="0" * 32)
    with pytest.raises(TicketConflict, match="another reviewer"):
        resolve(db, BOB, t)
    resolve(db, ANA, t)
    with pytest.raises(TicketConflict, match="already resolved"):
        resolve(db, ANA, t)
    with pytest.raises(TicketNotFound), db.session() as s:
        service.release(s, ticket_id=10**9, actor=ANA, lease_token=None, now=utcnow())


def test_heartbeat_extends_only_the_holders_lease(client: TestClient, db: Database) -> None:
    seed(client, 1)
    now = utcnow()
    t = claim(db, ANA, now)
    with db.session() as s:
        t2 = service.heartbeat(
            s,
            ticket_id=t.id,
            actor=ANA,
            lease_token=t.lease_token,
            now=now + LEASE / 2,
            lease=LEASE,
        )
    assert t2.lease_expires_at == now + LEASE / 2 + LEASE
    with pytest.raises(TicketConflict), db.session() as s:
        service.heartbeat(s, ticket_id=t.id, actor=BOB, lease_token=None, now=now, lease=LEASE)


def test_a_label_must_be_one_of_the_models(client: TestClient, db: Database) -> None:
    seed(client, 1)
    t = claim(db, ANA)
    with pytest.raises(InvalidInput, match="not one of the model's labels"):
        resolve(db, ANA, t, label="maybe")
    [row] = tickets(db, id=t.id)
    assert row.status == "claimed"  # the failed resolve was rolled back whole


def test_resolving_stores_the_label(client: TestClient, db: Database) -> None:
    seed(client, 1)
    t = claim(db, ANA)
    done = resolve(db, ANA, t, label="stay")
    assert (done.status, done.resolved_by, done.resolution) == (
        "resolved",
        "ana",
        {"note": None, "label": "stay"},
    )
    assert current_labels(db) == [(t.prediction_id, "stay", "review")]


def test_ingest_rules_open_tickets_idempotently(client: TestClient, db: Database) -> None:
    seed(client, 0)
    assert post(client, 4)["exceptions"] == 4
    assert post(client, 4) == {"accepted": 0, "duplicates": 4, "exceptions": 0}
    assert len(tickets(db)) == 4
    confident = post(client, 3, confidence=0.95, seed=2)
    assert confident["exceptions"] == 0


def test_a_budget_draws_flagged_records_and_counts_the_rest_as_suppressed(
    client: TestClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    pin_ingest_clock(monkeypatch, minute=30)
    seed(client, 0, ticket_budget_per_hour=5)
    opened = sum(post(client, 20, seed=s, prefix=f"b{s}")["exceptions"] for s in range(3))
    assert 0 < opened < 60
    with db.session(readonly=True) as s:
        draws = s.scalars(select(SampleDraw)).all()
        summary = views.summary(s, now=utcnow())
    # every flagged record was considered and has its probability, drawn or not
    assert len(draws) == 60 and all(0 < d.inclusion_probability <= 1 for d in draws)
    assert sum(d.sampled for d in draws) == opened == len(tickets(db))
    assert sum(d.inclusion_probability for d in draws) <= 5 + 1e-9
    assert summary.suppressed_total == 60 - opened
    assert [(x.kind, x.count) for x in summary.suppressed] == [("low_confidence", 60 - opened)]
    by_prediction = {d.prediction_id: d.inclusion_probability for d in draws if d.sampled}
    assert {t.prediction_id: t.inclusion_probability for t in tickets(db)} == pytest.approx(
        by_prediction
    )
    # drift is never suppressed
    open_incident(db)
    assert len(tickets(db, kind="drift")) == 1


def test_without_a_budget_every_flagged_record_is_a_ticket(
    client: TestClient, db: Database
) -> None:
    seed(client, 7)
    assert {t.inclusion_probability for t in tickets(db)} == {1.0}
    with db.session(readonly=True) as s:
        assert s.scalars(select(SampleDraw)).all() == []


def test_a_batch_resent_with_new_records_opens_tickets_for_the_new_ones_only(
    client: TestClient, db: Database
) -> None:
    # the rules run over the whole batch before it is stored; what was a duplicate
    # opens nothing and counts nowhere
    create_model_with_reference(client)
    first = predictions(6, seed=7, prefix="a", confidence=0.3)
    for p in first[:2]:
        p["features"]["plan"] = "platinum"
    r = client.post("/v1/models/churn/predictions", json={"predictions": first})
    assert r.json() == {"accepted": 6, "duplicates": 0, "exceptions": 7}  # 6 + 1 quality group
    more = predictions(3, seed=8, prefix="b", confidence=0.3)
    more[0]["features"]["plan"] = "platinum"
    r = client.post("/v1/models/churn/predictions", json={"predictions": [*more, *first]})
    assert r.json() == {"accepted": 3, "duplicates": 6, "exceptions": 3}
    low = tickets(db, kind="low_confidence")
    assert sorted(t.client_id for t in low) == sorted(p["id"] for p in first + more)
    [plan] = tickets(db, kind="data_quality")
    assert plan.count == 3 and plan.details["counts"] == {"unseen_category": 3}
    broken = [first[0]["id"], first[1]["id"], more[0]["id"]]
    assert sorted(e["client_id"] for e in plan.details["examples"]) == sorted(broken)


def test_data_quality_is_grouped_per_feature_and_hour(client: TestClient, db: Database) -> None:
    create_model_with_reference(client)
    for seed_ in (5, 6):
        batch = predictions(8, seed=seed_, confidence=0.9)
        for p in batch:
            p["features"]["plan"] = "platinum"
        batch[0]["features"]["age"] = 10_000.0
        r = client.post("/v1/models/churn/predictions", json={"predictions": batch})
        assert r.status_code == 202
    dq = tickets(db, kind="data_quality")
    assert sorted(t.details["feature"] for t in dq) == ["age", "plan"]
    plan = next(t for t in dq if t.details["feature"] == "plan")
    assert plan.count == 16
    assert plan.details["counts"] == {"unseen_category": 16}
    assert len(plan.details["examples"]) == service.MAX_GROUP_EXAMPLES
    assert plan.prediction_ids == [e["prediction_id"] for e in plan.details["examples"]]
    age = next(t for t in dq if t.details["feature"] == "age")
    assert age.count == 2 and age.details["examples"][0]["value"] == 10_000.0


def _group(feature: str, n: int, first_id: int) -> service.QualityGroup:
    """``n`` unseen categories of ``feature``, as the rules report them (5 examples at most)."""
    examples = [
        {"prediction_id": i, "client_id": f"r{i}", "rule": "unseen_category", "value": "x"}
        for i in range(first_id, first_id + min(n, 5))
    ]
    return service.QualityGroup(feature, {"unseen_category": n}, examples)


def test_deferred_data_quality_is_folded_into_the_tickets_of_its_own_hour(
    client: TestClient, db: Database
) -> None:
    seed(client, 0)
    mid = model_id(db)
    now = dt.datetime(2026, 12, 1, 12, 30, tzinfo=dt.UTC)
    earlier = now - dt.timedelta(hours=2)
    minutes = dt.timedelta(minutes=10)
    with db.session() as s:
        # the earlier hour has its plan ticket already
        new = service.fold_quality_groups(
            s, model_id=mid, groups=[_group("plan", 2, 100)], now=earlier
        )
        service.open_tickets(s, model_id=mid, candidates=new, now=earlier)
        # then batches that found the lock held: two of the earlier hour, one of this one
        for groups, at in (
            ([_group("plan", 3, 200), _group("age", 1, 300)], earlier + minutes),
            ([_group("plan", 6, 400)], earlier + 2 * minutes),
            ([_group("plan", 4, 500)], now - minutes),
        ):
            service.defer_quality_groups(s, model_id=mid, groups=groups, now=at)
    with db.session() as s:
        new = service.fold_quality_groups(s, model_id=mid, groups=[_group("plan", 1, 600)], now=now)
        service.open_tickets(s, model_id=mid, candidates=new, now=now)
        assert service.models_with_deferred_quality(s) == []
    dq = {t.group_key: t for t in tickets(db, kind="data_quality")}
    assert sorted(dq) == ["dq:age:2026-12-01T10", "dq:plan:2026-12-01T10", "dq:plan:2026-12-01T12"]
    # each deferred group under its own hour: the earlier ticket updated, not this hour's
    old = dq["dq:plan:2026-12-01T10"]
    assert old.count == 11 and old.details["counts"] == {"unseen_category": 11}
    assert old.prediction_ids == [100, 101, 200, 201, 202, 400, 401, 402, 403, 404]  # capped
    assert "since 2026-12-01 10:00" in old.reason
    assert dq["dq:age:2026-12-01T10"].count == 1
    assert dq["dq:age:2026-12-01T10"].details["hour"] == earlier.replace(minute=0).isoformat()
    current = dq["dq:plan:2026-12-01T12"]
    assert current.count == 5 and current.prediction_ids == [500, 501, 502, 503, 600]


def test_missing_required_feature_without_a_reference(client: TestClient) -> None:
    client.post(
        "/v1/models",
        json={
            "name": "req",
            "task": "regression",
            "features": [{"name": "x", "type": "numerical", "required": True}],
        },
    )
    r = client.post(
        "/v1/models/req/predictions",
        json={
            "predictions": [
                {"features": {"x": None}, "prediction": 1.0},
                {"features": {"x": 2}, "prediction": 2.0},
            ]
        },
    )
    assert r.json()["exceptions"] == 1
    [t] = client.get("/v1/tickets", params={"kind": "data_quality"}).json()["items"]
    assert t["details"]["counts"] == {"missing_required": 1}


def test_drift_ticket_once_per_incident_with_its_sample(client: TestClient, db: Database) -> None:
    seed(client, 4, confidence=0.9)
    sample = tuple(prediction_ids(db)[:3])
    open_incident(db, incident_id=7, sample=sample)
    open_incident(db, incident_id=7, sample=sample)
    [t] = tickets(db, kind="drift")
    assert t.group_key == "incident:7"
    assert t.prediction_ids == list(sample)
    assert t.details["drifted_features"] == ["age"]
    assert t.priority == states.PRIORITY["drift"]


def test_drift_resolution_labels_several_sampled_predictions(
    client: TestClient, db: Database
) -> None:
    seed(client, 4, confidence=0.9)
    ids = prediction_ids(db)
    open_incident(db, sample=tuple(ids[:3]))
    t = claim(db, ANA, kind="drift")
    with pytest.raises(InvalidInput, match="not one of the predictions"), db.session() as s:
        service.resolve(
            s,
            ticket_id=t.id,
            actor=ANA,
            lease_token=None,
            note=None,
            now=utcnow(),
            labels=[service.LabelIn("stay", "req-1-3")],
        )
    with pytest.raises(InvalidInput, match="several predictions"), db.session() as s:
        service.resolve(
            s,
            ticket_id=t.id,
            actor=ANA,
            lease_token=None,
            note=None,
            now=utcnow(),
            labels=[service.LabelIn("stay")],
        )
    with db.session() as s:
        done = service.resolve(
            s,
            ticket_id=t.id,
            actor=ANA,
            lease_token=None,
            note="new cohort",
            now=utcnow(),
            labels=[service.LabelIn("churn", "req-1-0"), service.LabelIn("stay", "req-1-2")],
        ).ticket
    assert done.resolution == {
        "note": "new cohort",
        "labels": [
            {"prediction_id": "req-1-0", "label": "churn"},
            {"prediction_id": "req-1-2", "label": "stay"},
        ],
    }
    assert current_labels(db) == [(ids[0], "churn", "review"), (ids[2], "stay", "review")]


def test_feedback_that_disagrees_opens_one_ticket(client: TestClient, db: Database) -> None:
    seed(client, 2, confidence=0.9)
    body = {"feedback": [{"id": "req-1-0", "label": "churn"}, {"id": "req-1-1", "label": "stay"}]}
    assert client.post("/v1/models/churn/feedback", json=body).json()["exceptions"] == 1
    assert client.post("/v1/models/churn/feedback", json=body).json()["exceptions"] == 0
    [t] = tickets(db, kind="feedback_mismatch")
    assert t.details["actual"] == "churn" and t.details["prediction"] == "stay"


def test_retraining_ready_after_enough_labels(client: TestClient, db: Database) -> None:
    seed(client, 5, retraining_ready_labels=2)
    ready: list[service.RetrainingReady] = []
    for n in range(5):
        done = resolved(db, ANA, claim(db, ANA))
        if done.retraining_ready is not None:
            ready.append(done.retraining_ready)
        assert len(ready) == (n + 1) // 2
    first, second = ready
    assert (first.new_labels, first.total_labels, first.since) == (2, 2, None)
    assert (second.new_labels, second.total_labels) == (2, 4)
    assert second.since is not None and second.export_path == "/v1/models/churn/training-data"


def test_second_review_agreement_keeps_one_label(client: TestClient, db: Database) -> None:
    seed(client, 1, review_rate=1.0)
    first = resolve(db, ANA, claim(db, ANA), label="churn")
    with db.session() as s:  # the first reviewer cannot review their own label
        assert service.claim(s, actor=ANA, now=utcnow()) is None
    review = claim(db, BOB)
    assert (review.kind, review.subject_ticket_id, review.prediction_id) == (
        "second_review",
        first.id,
        first.prediction_id,
    )
    done = resolve(db, BOB, review, label="churn")
    assert done.qc_agreed is True
    assert current_labels(db) == [(first.prediction_id, "churn", "review")]
    with db.session(readonly=True) as s:
        summary = views.summary(s, now=utcnow())
    assert [(a.reviews, a.agreed, a.rate) for a in summary.agreement_by_model] == [(1, 1, 1.0)]
    assert {a.name for a in summary.agreement_by_reviewer} == {ANA.name, BOB.name}


def test_disagreement_is_adjudicated_and_the_adjudication_exported(
    client: TestClient, db: Database
) -> None:
    seed(client, 1, review_rate=1.0)
    first = resolve(db, ANA, claim(db, ANA), label="churn")
    done = resolve(db, BOB, claim(db, BOB), label="stay")
    assert done.qc_agreed is False
    assert current_labels(db) == []  # both disputed until adjudicated
    adj = claim(db, CID)
    assert (adj.kind, adj.subject_ticket_id) == ("adjudication", first.id)
    assert [x["label"] for x in adj.details["labels"]] == ["churn", "stay"]
    resolve(db, CID, adj, label="stay")
    assert current_labels(db) == [(first.prediction_id, "stay", "adjudication")]
    with db.session(readonly=True) as s:
        statuses = sorted(s.scalars(select(Label.status)))
    assert statuses == ["current", "superseded", "superseded"]
    with db.session(readonly=True) as s:
        summary = views.summary(s, now=utcnow())
    assert [(a.reviews, a.agreed) for a in summary.agreement_by_model] == [(1, 0)]


def test_review_rate_samples_a_fraction(client: TestClient, db: Database) -> None:
    seed(client, 40, review_rate=0.5)
    for _ in range(40):
        resolve(db, ANA, claim(db, ANA, kind="low_confidence"))
    reviews = len(tickets(db, kind="second_review"))
    assert 8 <= reviews <= 32


def test_reopen_undoes_a_resolution_within_the_window(client: TestClient, db: Database) -> None:
    seed(client, 1, review_rate=1.0)
    t = claim(db, ANA)
    now = utcnow()
    resolve(db, ANA, t, label="churn", now=now)
    with pytest.raises(TicketConflict, match="only the reviewer"), db.session() as s:
        service.reopen(s, ticket_id=t.id, actor=BOB, now=now)
    with db.session() as s:
        again = service.reopen(s, ticket_id=t.id, actor=ANA, now=now + dt.timedelta(minutes=1))
    assert (again.status, again.claimed_by, again.resolution) == ("claimed", "ana", None)
    assert again.lease_token and again.lease_token != t.lease_token
    assert current_labels(db) == []
    [review] = tickets(db, kind="second_review")
    assert review.status == "dismissed"  # the pending second review was withdrawn
    resolve(db, ANA, again, label="stay")
    assert current_labels(db) == [(t.prediction_id, "stay", "review")]
    assert [a for a, _, _ in events(db, t.id)] == ["open", "claim", "resolve", "reopen", "resolve"]
    late = now + states.REOPEN_WINDOW + dt.timedelta(minutes=5)
    with pytest.raises(TicketConflict, match="no longer"), db.session() as s:
        service.reopen(s, ticket_id=t.id, actor=ANA, now=late)


def test_reopen_is_refused_once_a_second_review_is_under_way(
    client: TestClient, db: Database
) -> None:
    seed(client, 1, review_rate=1.0)
    t = resolve(db, ANA, claim(db, ANA))
    claim(db, BOB)
    with pytest.raises(TicketConflict, match="second review"), db.session() as s:
        service.reopen(s, ticket_id=t.id, actor=ANA, now=utcnow())


def test_a_newer_review_of_the_same_prediction_replaces_the_older(
    client: TestClient, db: Database
) -> None:
    seed(client, 1, confidence=0.3)
    resolve(db, ANA, claim(db, ANA), label="stay")
    client.post(
        "/v1/models/churn/feedback", json={"feedback": [{"id": "req-1-0", "label": "churn"}]}
    )
    resolve(db, BOB, claim(db, BOB, kind="feedback_mismatch"), label="churn")
    [(_, label, _)] = current_labels(db)
    assert label == "churn"
