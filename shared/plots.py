"""Evaluation and explanation figures. Pure: data in, matplotlib figures out, nothing saved."""

import matplotlib

matplotlib.use("Agg")  # workers have no display; set before pyplot is imported anywhere

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import shap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support  # noqa: E402

from shared.explaining import Explanation  # noqa: E402
from shared.schema import (
    FEATURE_LABELS,  # noqa: E402
    PRICE_CATEGORIES,  # noqa: E402
)


def importance_bars(importances: dict[str, dict[str, float]], top: int) -> Figure:
    """Mean |SHAP| per feature, one bar group per class, the top features overall."""
    frame = pd.DataFrame(importances)
    frame = frame.loc[frame.sum(axis=1).sort_values(ascending=False).index[:top]]
    frame.index = [FEATURE_LABELS.get(name, name) for name in frame.index]
    figure = Figure(figsize=(8, 0.4 * len(frame) + 1.5))
    axes = figure.add_subplot()
    frame.iloc[::-1].plot.barh(ax=axes, stacked=True)
    axes.set_xlabel("mean |SHAP value| (model output units)")
    axes.set_title("Feature importance per price category")
    figure.tight_layout()
    return figure


def beeswarm(explanation: Explanation, label: str, top: int) -> Figure:
    """SHAP summary (beeswarm) of one class: how each feature's values push towards it, the
    features named as a person knows them. A category's code says nothing high or low, so
    categorical features are drawn in grey (their effects by name: category_effects)."""
    index = explanation.classes.index(label)
    data = explanation.features.copy()
    names = []
    for column in data.columns:
        names.append(FEATURE_LABELS.get(column, column))
        if column in explanation.category_names:
            # shap draws a column of text (object dtype) in grey, not on the value scale.
            data[column] = [explanation.shown_value(row, column) for row in range(len(data))]
            names[-1] += " (by name: see categories)"
    data.columns = names
    values = shap.Explanation(values=explanation.values[:, :, index], data=data)
    figure = plt.figure()
    # plot_size None keeps this figure's size: shap's own ("auto") is too narrow for the names.
    shap.plots.beeswarm(values, max_display=top, show=False, plot_size=None)
    figure.set_size_inches(11, 0.45 * min(top, len(names)) + 1.8)
    figure.axes[0].set_xlabel(f"SHAP value towards {label} (model output units)")
    figure.suptitle(f"SHAP values towards {label}, {len(data)} test listings")
    figure.tight_layout()
    plt.close(figure)  # detach from pyplot's registry; the figure object stays usable
    return figure


def category_effects(explanation: Explanation, label: str, most: int = 12) -> Figure:
    """Per categorical feature, the SHAP values towards a class of each category by name (the
    most frequent categories of the sample, most above), as box plots."""
    index = explanation.classes.index(label)
    features = list(explanation.category_names)
    figure = Figure(figsize=(11, 1.2 + 0.35 * most * len(features)))
    panels = np.atleast_1d(figure.subplots(len(features), 1))
    for axes, feature in zip(panels, features, strict=True):
        names = explanation.category_names[feature]
        codes = explanation.features[feature].to_numpy()
        values = explanation.values[:, explanation.features.columns.get_loc(feature), index]
        shown = pd.Series(codes[~np.isnan(codes)]).value_counts().index[:most][::-1]
        axes.boxplot(
            [values[codes == code] for code in shown],
            tick_labels=[f"{names[int(code)]} ({(codes == code).sum()})" for code in shown],
            orientation="horizontal",
            showfliers=False,
        )
        axes.axvline(0, color="grey", linewidth=0.8)
        axes.set_title(FEATURE_LABELS.get(feature, feature), loc="left")
    panels[-1].set_xlabel(f"SHAP value towards {label} (model output units)")
    figure.suptitle(f"Categories' effect towards {label} (listings per category in brackets)")
    figure.tight_layout()
    return figure


def confusion_figure(y_true: pd.Series, y_pred: pd.Series) -> Figure:
    """Confusion matrix normalised per true class."""
    labels = list(PRICE_CATEGORIES)
    matrix = confusion_matrix(y_true, y_pred, labels=labels, normalize="true")
    figure = Figure(figsize=(5.5, 4.5))
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    for (row, col), value in np.ndenumerate(matrix):
        axes.text(
            col,
            row,
            f"{value:.2f}",
            ha="center",
            va="center",
            color="white" if value > 0.5 else "black",
        )
    axes.set_xticks(range(len(labels)), labels)
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    figure.colorbar(image, ax=axes)
    figure.tight_layout()
    return figure


def class_report_figure(y_true: pd.Series, y_pred: pd.Series) -> Figure:
    """Per-class precision, recall and support."""
    labels = list(PRICE_CATEGORIES)
    precision, recall, _, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    figure = Figure(figsize=(9, 4))
    scores, counts = figure.subplots(1, 2)
    positions = np.arange(len(labels))
    scores.bar(positions - 0.2, precision, 0.4, label="precision")
    scores.bar(positions + 0.2, recall, 0.4, label="recall")
    scores.set_xticks(positions, labels)
    scores.set_ylim(0, 1)
    scores.legend()
    counts.bar(positions, support, color="grey")
    counts.set_xticks(positions, labels)
    counts.set_title("support (test rows)")
    figure.tight_layout()
    return figure


def price_by_neighbourhood(clean: pd.DataFrame) -> Figure:
    """Distribution of nightly prices per borough (log scale: prices are heavy-tailed)."""
    boroughs = sorted(clean["neighbourhood"].unique())
    figure = Figure(figsize=(8, 4.5))
    axes = figure.add_subplot()
    axes.boxplot(
        [clean.loc[clean["neighbourhood"] == b, "price"] for b in boroughs],
        tick_labels=boroughs,
        showfliers=False,
    )
    axes.set_yscale("log")
    axes.set_ylabel("nightly price (USD)")
    axes.set_title("Price by neighbourhood")
    figure.tight_layout()
    return figure


def calibration_figure(y_true: pd.Series, proba: pd.DataFrame, bins: int = 10) -> Figure:
    """Reliability curves, one per class (one-vs-rest): clients read these probabilities."""
    figure = Figure(figsize=(6, 5.5))
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    for label in PRICE_CATEGORIES:
        truth = (y_true == label).astype(int)
        observed, predicted = calibration_curve(
            truth, proba[label], n_bins=bins, strategy="quantile"
        )
        axes.plot(predicted, observed, marker="o", label=label)
    axes.set_xlabel("predicted probability")
    axes.set_ylabel("observed frequency")
    axes.set_title("Calibration per price category (test split)")
    axes.legend()
    figure.tight_layout()
    return figure


def drift_figure(report: dict) -> Figure:
    """A drift check at a glance: each field's PSI against the threshold (over it in red), and
    the predicted categories' mix beside the training labels'."""
    features = {
        name: found["psi"] for name, found in report["features"].items() if found["psi"] is not None
    }
    threshold = report["thresholds"]["feature_psi"]
    names = sorted(features, key=features.__getitem__)
    figure = Figure(figsize=(11, 0.3 * len(names) + 2.5))
    bars, mix = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    colours = ["tab:red" if features[n] > threshold else "tab:blue" for n in names]
    bars.barh(names, [features[n] for n in names], color=colours)
    bars.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold}")
    bars.set_xlabel("population stability index (window vs training data)")
    bars.legend(loc="lower right")
    categories = report["category_mix"]
    frame = pd.DataFrame(
        {"training labels": categories["training"], "predicted": categories["predicted"]}
    ).loc[list(PRICE_CATEGORIES)]
    frame.plot.bar(ax=mix, rot=0)
    mix.set_ylabel("share of listings")
    mix_psi = categories["psi"]
    mix.set_title(f"category mix, PSI {mix_psi:.2f}" if mix_psi is not None else "category mix")
    verdict = "DRIFT" if report["drifted"] else "no drift"
    figure.suptitle(
        f"{verdict}: {report['listings']:,} listings answered by version "
        f"{report['champion_version']}, last {report['window_hours']:g} h"
    )
    figure.tight_layout()
    return figure
