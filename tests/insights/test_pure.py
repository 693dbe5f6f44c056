"""Pure modules: significance tests, sample sizes, spikes, topics and SVG charts."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opsdesk.insights import charts, significance, spikes, topics


def test_two_proportion_z_test_matches_the_textbook() -> None:
    result = significance.two_proportion_z_test(300, 1000, 350, 1000)
    assert result.effect == pytest.approx(0.05)
    # pooled p = 0.325, se = sqrt(.325*.675*2/1000) = 0.020946, z = 2.387
    assert result.p_value == pytest.approx(0.01698, abs=1e-4)
    assert result.low == pytest.approx(0.05 - 1.959964 * math.sqrt(0.3 * 0.7 / 1000 + 0.35 * 0.65 / 1000))
    assert significance.sentence("B", "FCR", result, higher_is_better=True) == (
        "variant B raised FCR by 5.0 points ± 4.1, p = 0.017"
    )


def test_mann_whitney_reports_relative_median_change_with_interval() -> None:
    rng = np.random.default_rng(7)
    control = rng.lognormal(8, 0.8, 600)
    variant = control * 0.8  # every ticket 20 % faster
    result = significance.mann_whitney(list(control), list(variant))
    assert result.effect == pytest.approx(-0.2)
    assert result.low <= -0.2 <= result.high
    assert result.p_value < 0.001
    text = significance.sentence("B", "first reply time", result, higher_is_better=False)
    assert text.startswith("variant B cut first reply time by 20 % ± ")
    assert text.endswith("p < 0.001")
    same = significance.mann_whitney([10, 20, 30, 40], [10, 20, 30, 40])
    assert same.p_value == pytest.approx(1.0)
    assert "not a significant difference yet" in significance.sentence("B", "x", same, higher_is_better=False)


def test_sample_sizes_up_front() -> None:
    # The classic: 30 % -> 35 %, alpha 0.05 two-sided, power 0.8: 1,377 per arm.
    assert significance.sample_size_two_proportions(0.30, 0.05) == 1377
    # log-sd 1, detect -10 %: 2 * (1.96 + 0.8416)^2 / ln(0.9)^2 / 0.864 = 1,637.
    assert significance.sample_size_durations(1.0, -0.10) == 1637
    with pytest.raises(ValueError, match="proportions"):
        significance.sample_size_two_proportions(0.98, 0.05)
    with pytest.raises(ValueError, match="spread"):
        significance.sample_size_durations(0.0, 0.1)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
)
def test_z_test_invariants(control: tuple[int, int], variant: tuple[int, int]) -> None:
    result = significance.two_proportion_z_test(*control, *variant)
    assert 0.0 <= result.p_value <= 1.0
    assert result.low <= result.effect + 1e-12
    assert result.effect <= result.high + 1e-12


MONDAY_NINE = datetime(2026, 11, 23, 9, tzinfo=UTC)


def test_spike_against_same_hour_of_previous_weeks() -> None:
    week = timedelta(weeks=1)
    billing = {MONDAY_NINE - week * back: 10 for back in range(1, 5)} | {MONDAY_NINE: 30}
    steady = {MONDAY_NINE - week * back: 10 for back in range(1, 5)} | {MONDAY_NINE: 14}
    quiet = {MONDAY_NINE: 4}  # below the minimum: not a spike however new
    found = spikes.detect({"billing": billing, "login": steady, "other": quiet}, MONDAY_NINE)
    assert [(s.key, s.observed, s.expected) for s in found] == [("billing", 30, 10.0)]
    assert found[0].score == pytest.approx(20 / math.sqrt(10))
    # A different hour-of-week is not the baseline: Monday 10:00 had nothing before.
    assert spikes.expected_count(billing, MONDAY_NINE + timedelta(hours=1)) == 0.0


def test_topics_cluster_with_labels_examples_and_growth() -> None:
    refunds = [f"refund request for invoice {n} charged twice" for n in range(12)]
    logins = [f"cannot login password reset email {n} not arriving" for n in range(8)]
    current = [topics.Document(i, text) for i, text in enumerate(refunds + logins)]
    previous = [topics.Document(100 + i, f"cannot login password reset {i}") for i in range(8)]
    found = topics.cluster(current, previous, max_topics=2)
    assert len(found) == 2
    refund_topic, login_topic = found
    assert refund_topic.size == 12
    assert "refund" in " ".join(refund_topic.terms) or "invoice" in " ".join(refund_topic.terms)
    assert set(refund_topic.example_ids) <= set(range(12))
    assert len(refund_topic.example_ids) == 3
    assert refund_topic.is_new  # nothing like it last period
    assert login_topic.previous_size == 8
    assert not login_topic.is_new
    assert not login_topic.is_growing
    assert topics.cluster(current[:3]) == []


def test_svg_charts_are_accessible_and_escape_text() -> None:
    svg = charts.bar_chart(
        "Volume by channel", [charts.Datum("email <x>", 12, "/t?a=1&b=2"), charts.Datum("chat", 3)]
    )
    tree = ElementTree.fromstring(svg)
    namespace = "{http://www.w3.org/2000/svg}"
    assert tree.get("role") == "img"
    assert tree.find(f"{namespace}title").text == "Volume by channel"  # type: ignore[union-attr]
    assert tree.find(f"{namespace}desc").text == "email <x>: 12; chat: 3"  # type: ignore[union-attr]
    assert tree.find(f"{namespace}a").get("href") == "/t?a=1&b=2"  # type: ignore[union-attr]
    line = charts.line_chart(
        "FRT",
        [charts.Line("p50", [charts.Datum("W44", 3600), charts.Datum("W45", 1800)])],
        format_value=charts.format_duration,
    )
    assert "p50: W44 60m, W45 30m" in ElementTree.fromstring(line).find(f"{namespace}desc").text  # type: ignore[union-attr,operator]
    assert charts.format_share(0.1234) == "12.3 %"
