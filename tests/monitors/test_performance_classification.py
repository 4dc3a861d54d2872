"""Realized and CBPE classification: exact against scikit-learn, sums, simulations."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from monitors.performance import (
    ClassificationSpec,
    EstimatedClassification,
    LabelledClassification,
    cbpe_sums,
    fit_classification,
    labelled_classification,
    metric,
    metrics,
    reference_metrics,
)

BINARY = ("no", "yes")
THREE = ("a", "b", "c")


def binary_data(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    score = rng.beta(2, 2, n)
    truth = np.where(rng.uniform(size=n) < score, "yes", "no")
    predicted = np.where(score >= 0.5, "yes", "no")
    return truth, predicted, score


def multiclass_data(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet([0.6, 0.6, 0.6], n)
    truth_idx = (rng.uniform(size=(n, 1)) > probs.cumsum(axis=1)).sum(axis=1)
    truth = np.asarray(THREE)[truth_idx]
    predicted = np.asarray(THREE)[probs.argmax(axis=1)]
    return truth, predicted, probs


def test_binary_metrics_match_scikit_learn() -> None:
    truth, predicted, score = binary_data(0, 3000)
    spec = fit_classification(BINARY)
    sums = labelled_classification(spec, truth, predicted, probabilities=np.c_[1 - score, score])
    assert (
        sums.confusion.tolist() == skm.confusion_matrix(truth, predicted, labels=BINARY).T.tolist()
    )
    got = reference_metrics(sums)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(truth, predicted))
    assert got["precision"] == pytest.approx(skm.precision_score(truth, predicted, pos_label="yes"))
    assert got["recall"] == pytest.approx(skm.recall_score(truth, predicted, pos_label="yes"))
    assert got["f1"] == pytest.approx(skm.f1_score(truth, predicted, pos_label="yes"))
    # 200 uniform bins: the binned AUC is within the mass of ties inside bins
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(truth == "yes", score), abs=0.002)


def test_roc_auc_is_exact_with_a_bin_per_score() -> None:
    truth, predicted, score = binary_data(1, 500)
    score = np.round(score, 2)  # ties, counted one half as scikit-learn does
    edges = tuple(np.unique(score)[1:])
    spec = ClassificationSpec(BINARY, "yes", edges)
    sums = labelled_classification(spec, truth, predicted, probabilities=np.c_[1 - score, score])
    assert metric(sums, "roc_auc").value == pytest.approx(
        skm.roc_auc_score(truth == "yes", score), abs=1e-12
    )


def test_multiclass_macro_metrics_match_scikit_learn() -> None:
    truth, predicted, probs = multiclass_data(2, 2000)
    spec = fit_classification(THREE)
    sums = labelled_classification(spec, truth, predicted, probabilities=probs)
    got = reference_metrics(sums)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(truth, predicted))
    for name, fn in [
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
        ("f1", skm.f1_score),
    ]:
        assert got[name] == pytest.approx(fn(truth, predicted, average="macro")), name
    assert "roc_auc" not in got
    assert metric(sums, "roc_auc") is None


def test_ece_matches_a_direct_computation() -> None:
    truth, predicted, probs = multiclass_data(3, 2000)
    spec = fit_classification(THREE)
    conf = probs.max(axis=1)
    sums = labelled_classification(spec, truth, predicted, confidence=conf)
    bins = np.minimum((conf * 10).astype(int), 9)
    correct = truth == predicted
    expected = sum(abs(correct[bins == b].sum() - conf[bins == b].sum()) for b in range(10)) / len(
        conf
    )
    est = metric(sums, "ece")
    assert est is not None
    assert est.value == pytest.approx(expected)
    assert est.ci_low is None
    assert est.ci_high is None


def test_golden_values() -> None:
    spec = fit_classification(BINARY)
    sums = labelled_classification(
        spec,
        ["yes", "yes", "yes", "no", "no", "no", "no", "yes"],
        ["yes", "yes", "no", "no", "no", "yes", "no", "yes"],
    )
    acc = metric(sums, "accuracy")
    assert acc is not None
    # 6 of 8, Wilson 95% as scipy.stats.binomtest(6, 8).proportion_ci(method="wilson")
    assert (acc.value, acc.n) == (0.75, 8)
    assert acc.ci_low == pytest.approx(0.40927543031016883, abs=1e-12)
    assert acc.ci_high == pytest.approx(0.9285207872478909, abs=1e-12)
    f1 = metric(sums, "f1")
    assert f1 is not None
    assert f1.value == pytest.approx(0.75)  # precision 3/4, recall 3/4


def test_block_sums_add_up_to_the_window_and_survive_json() -> None:
    truth, predicted, score = binary_data(4, 3000)
    spec = fit_classification(
        BINARY, labels=truth, predicted=predicted, probabilities=np.c_[1 - score, score]
    )
    spec = ClassificationSpec.from_json(json.loads(json.dumps(spec.to_json())))
    whole = labelled_classification(spec, truth, predicted, probabilities=np.c_[1 - score, score])
    blocks = [
        labelled_classification(
            spec,
            truth[i : i + 500],
            predicted[i : i + 500],
            probabilities=np.c_[1 - score, score][i : i + 500],
        )
        for i in range(0, 3000, 500)
    ]
    window = sum(blocks, LabelledClassification.empty(spec))
    assert np.array_equal(window.confusion, whole.confusion)
    assert np.array_equal(window.positives, whole.positives)
    restored = LabelledClassification.from_json(json.loads(json.dumps(window.to_json())))
    for name, est in metrics(whole).items():
        got = metric(restored, name)
        assert est is not None
        assert got is not None
        assert got.value == pytest.approx(est.value, abs=1e-12), name
    # a replaced label: take the old record out, put the new one in
    fixed = (
        whole
        - labelled_classification(spec, truth[:1], predicted[:1])
        + labelled_classification(spec, predicted[:1], predicted[:1])
    )
    assert fixed.confusion.trace() == whole.confusion.trace() + (truth[0] != predicted[0])

    est_whole = cbpe_sums(spec, predicted, probabilities=np.c_[1 - score, score])
    est_blocks = sum(
        (
            cbpe_sums(
                spec, predicted[i : i + 500], probabilities=np.c_[1 - score, score][i : i + 500]
            )
            for i in range(0, 3000, 500)
        ),
        EstimatedClassification.empty(spec),
    )
    assert np.allclose(est_blocks.confusion, est_whole.confusion)
    assert np.allclose(est_blocks.cross, est_whole.cross)
    restored_est = EstimatedClassification.from_json(json.loads(json.dumps(est_blocks.to_json())))
    assert metric(restored_est, "f1") == metric(est_blocks, "f1")


def test_sums_of_different_specs_do_not_add() -> None:
    a = LabelledClassification.empty(fit_classification(BINARY))
    b = LabelledClassification.empty(fit_classification(THREE))
    with pytest.raises(ValueError, match="different"):
        _ = a + b
    with pytest.raises(ValueError, match="kind"):
        EstimatedClassification.from_json(a.to_json())


def test_bad_input_says_what_is_wrong() -> None:
    spec = fit_classification(THREE)
    with pytest.raises(ValueError, match="shape"):
        labelled_classification(spec, ["a"], ["a"], probabilities=np.ones((1, 2)))
    with pytest.raises(ValueError, match="labels for"):
        labelled_classification(spec, ["a", "b"], ["a"])
    with pytest.raises(ValueError, match="at least 2 classes"):
        fit_classification(["a"])
    with pytest.raises(ValueError, match="calibration"):
        cbpe_sums(spec, ["a"], confidence=[0.9])


def test_unknown_labels_and_missing_scores_are_skipped() -> None:
    spec = fit_classification(BINARY)
    sums = labelled_classification(
        spec,
        ["yes", "maybe", None, "no"],
        ["yes", "yes", "no", "no"],
        confidence=[0.9, np.nan, 0.8, np.nan],
    )
    assert sums.n == 2
    assert sums.calibration_bins[0].sum() == 1  # only one of the two has a score
    assert metric(LabelledClassification.empty(spec), "accuracy") is None


# --- simulations: bias and interval coverage ------------------------------------------


def test_realized_intervals_cover_the_process_value() -> None:
    """Labelled samples of 300 from a model whose true accuracy is known."""
    rng = np.random.default_rng(10)
    spec = fit_classification(BINARY)
    # population: P(yes) = 0.3; the model is right 85% of the time on "no", 70% on "yes"
    p_yes, right_no, right_yes = 0.3, 0.85, 0.70
    true_acc = (1 - p_yes) * right_no + p_yes * right_yes
    true_prec = p_yes * right_yes / (p_yes * right_yes + (1 - p_yes) * (1 - right_no))
    true_f1 = 2 * true_prec * right_yes / (true_prec + right_yes)
    hits = {"accuracy": 0, "recall": 0, "f1": 0}
    errors = {k: [] for k in hits}
    windows = 1000
    for _ in range(windows):
        truth = np.where(rng.uniform(size=300) < p_yes, "yes", "no")
        right = rng.uniform(size=300) < np.where(truth == "yes", right_yes, right_no)
        predicted = np.where(right, truth, np.where(truth == "yes", "no", "yes"))
        sums = labelled_classification(spec, truth, predicted)
        for name, truth_value in [("accuracy", true_acc), ("recall", right_yes), ("f1", true_f1)]:
            est = metric(sums, name)
            assert est is not None
            hits[name] += est.ci_low <= truth_value <= est.ci_high
            errors[name].append(est.value - truth_value)
    for name in hits:
        assert hits[name] / windows >= 0.93, (name, hits[name])
        assert abs(np.mean(errors[name])) < 0.005, name


def simulate_cbpe(
    seed: int, windows: int, n: int, spec: ClassificationSpec, draw: object
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """CBPE on windows of a calibrated model: coverage of the realized value, bias, width."""
    rng = np.random.default_rng(seed)
    names = (
        ("accuracy", "precision", "recall", "f1", "roc_auc")
        if spec.binary
        else ("accuracy", "precision", "recall", "f1")
    )
    hits = dict.fromkeys(names, 0.0)
    bias = dict.fromkeys(names, 0.0)
    width = dict.fromkeys(names, 0.0)
    for w in range(windows):
        truth, predicted, scores = draw(rng, n, w)  # type: ignore[operator]
        kwargs = {"probabilities": scores}
        est_sums = cbpe_sums(spec, predicted, **kwargs)
        real_sums = labelled_classification(spec, truth, predicted, **kwargs)
        for name in names:
            est, real = metric(est_sums, name), metric(real_sums, name)
            assert est is not None
            assert real is not None
            hits[name] += (est.ci_low <= real.value <= est.ci_high) / windows
            bias[name] += (est.value - real.value) / windows
            width[name] += (est.ci_high - est.ci_low) / windows
    return hits, bias, width


def test_cbpe_is_unbiased_and_covers_the_realized_value_binary() -> None:
    truth, predicted, score = binary_data(20, 50_000)
    spec = fit_classification(
        BINARY, labels=truth, predicted=predicted, probabilities=np.c_[1 - score, score]
    )

    def draw(rng: np.random.Generator, n: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # covariate shift: the score distribution moves from window to window
        a = 1.0 + 3.0 * (w % 10) / 10
        s = rng.beta(a, 2.0, n)
        t = np.where(rng.uniform(size=n) < s, "yes", "no")
        return t, np.where(s >= 0.5, "yes", "no"), np.c_[1 - s, s]

    hits, bias, width = simulate_cbpe(21, 300, 2000, spec, draw)
    for name in hits:
        assert hits[name] >= 0.92, (name, hits)
        assert abs(bias[name]) < 0.006, (name, bias)
        assert width[name] < 0.15, (name, width)


def test_cbpe_multiclass_probabilities_and_confidence() -> None:
    truth, predicted, probs = multiclass_data(30, 30_000)
    spec = fit_classification(THREE, labels=truth, predicted=predicted, probabilities=probs)
    assert spec.calibration is not None
    assert spec.calibration.mode == "probabilities"

    def draw(rng: np.random.Generator, n: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        alpha = [0.6 + 0.2 * (w % 4), 0.6, 0.6]
        p = rng.dirichlet(alpha, n)
        t = (rng.uniform(size=(n, 1)) > p.cumsum(axis=1)).sum(axis=1)
        return np.asarray(THREE)[t], np.asarray(THREE)[p.argmax(axis=1)], p

    hits, bias, _ = simulate_cbpe(31, 200, 2000, spec, draw)
    for name in hits:
        assert hits[name] >= 0.92, (name, hits)
        assert abs(bias[name]) < 0.01, (name, bias)

    # confidence only: accuracy is still estimated without bias
    conf_spec = fit_classification(
        THREE, labels=truth, predicted=predicted, confidence=probs.max(axis=1)
    )
    assert conf_spec.calibration is not None
    assert conf_spec.calibration.mode == "confidence"
    rng = np.random.default_rng(32)
    errs, hits_acc = [], 0
    for w in range(200):
        t, pr, p = draw(rng, 2000, w)
        est = metric(cbpe_sums(conf_spec, pr, confidence=p.max(axis=1)), "accuracy")
        real = float(np.mean(t == pr))
        assert est is not None
        errs.append(est.value - real)
        hits_acc += est.ci_low <= real <= est.ci_high
    assert abs(np.mean(errs)) < 0.005
    assert hits_acc / 200 >= 0.92


def test_many_documents_add_up_at_once() -> None:
    truth, predicted, score = binary_data(5, 2000)
    spec = fit_classification(
        BINARY, labels=truth, predicted=predicted, probabilities=np.c_[1 - score, score]
    )
    blocks = [
        cbpe_sums(spec, predicted[i : i + 100], probabilities=np.c_[1 - score, score][i : i + 100])
        for i in range(0, 2000, 100)
    ]
    total = EstimatedClassification.sum_json([json.loads(json.dumps(b.to_json())) for b in blocks])
    one_by_one = sum(blocks, EstimatedClassification.empty(spec))
    assert np.allclose(total.confusion, one_by_one.confusion)
    assert np.allclose(total.cross, one_by_one.cross)
    assert total.reference_rows == one_by_one.reference_rows
    with pytest.raises(ValueError, match="no EstimatedClassification"):
        EstimatedClassification.sum_json([])
    with pytest.raises(ValueError, match="kind"):
        LabelledClassification.sum_json([blocks[0].to_json()])
