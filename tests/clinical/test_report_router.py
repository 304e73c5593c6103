"""The clinician report (HTML) and the per-instrument chart (SVG), read as markup."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.permissions import Role
from app.core.datetimes import EARLIEST_UTC, LATEST_UTC
from tests.clinical.conftest import day, fcs_from_others, fscrs, phq9, scs_sf, seed
from tests.conftest import ClinicKeys


def seed_course(app: FastAPI, clinic: ClinicKeys, patient_id: str) -> None:
    for week, (total, item9) in enumerate(((18, 1), (15, 0), (11, 0), (4, 0))):
        seed(app, clinic, patient_id, "phq9", phq9(total, item9=item9), day(7 * week))
    for week, total in enumerate((40, 33, 21)):
        seed(app, clinic, patient_id, "fcs_from_others", fcs_from_others(total), day(7 * week))
    for week, (positive, negative) in enumerate(((2, 4), (3, 3), (4, 2))):
        seed(app, clinic, patient_id, "scs_sf", scs_sf(positive, negative), day(7 * week))


def points_in(svg: str, group: str) -> int:
    """Markers (``<use>``) inside the group with this id, up to its first nested group's end."""
    start = svg.index(f'id="{group}"')
    return svg[start : svg.index("</g>\n   </g>", start)].count("<use ")


def test_the_report_has_a_chart_with_every_point_a_change_table_and_the_alerts(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    seed_course(app, clinic, patient_id)
    client.put("/v1/clinic/settings", json={"crisis_text": "Crisis line 555-0100"}, headers=clinic.headers(Role.ADMIN))

    response = client.get(f"/v1/patients/{patient_id}/report", headers=clinic.headers())

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    html = response.text
    # No script, no external resource of any kind.
    assert "<script" not in html
    assert not re.search(r"""\b(src|href)=["']?(https?:)?//""", html)
    assert "<link" not in html
    # One figure per instrument, depression first, each with its points and a data table.
    figures = re.findall(r'<figure class="chart" id="figure-([a-z0-9_]+)"[^>]*data-points="(\d+)"', html)
    assert figures == [("phq9", "4"), ("fcs_from_others", "3"), ("scs_sf", "3")]
    assert points_in(html, "chart-phq9-points-total") == 4
    assert points_in(html, "chart-fcs_from_others-points-total") == 3
    assert points_in(html, "chart-scs_sf-points-total") == 3
    assert points_in(html, "chart-phq9-flags-risk") == 1
    assert html.count('class="chart-data"') == 3
    assert 'role="img" aria-labelledby="chart-phq9-title chart-phq9-desc"' in html
    # The change table: PHQ-9 18 → 4 recovered (Jacobson–Truax); the FCS has no parameters and says so.
    assert re.search(r'data-instrument="phq9" data-score="total">.*?<strong>recovered</strong>', html, re.S)
    assert re.search(r'data-instrument="fcs_from_others".*?parameters missing', html, re.S)
    assert (
        "a reliability coefficient (without it, the reliable change index, the reliable change threshold, "
        "the change category cannot be given)" in html
    )
    # The alert, with the clinic's crisis text.
    assert 'data-flag="item9_positive"' in html
    assert "Crisis line 555-0100" in html
    assert "@media print" in html


def test_roles_without_alert_access_get_the_report_without_alerts(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    seed(app, clinic, patient_id, "phq9", phq9(12, item9=2), day(0))

    html = client.get(f"/v1/patients/{patient_id}/report", headers=clinic.headers(Role.INTEGRATION)).text

    assert 'id="alerts"' not in html
    assert "item9_positive" in html  # the flag is still part of the measurement's data table


def test_a_patient_without_measurements_gets_an_empty_report(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    response = client.get(f"/v1/patients/{patient_id}/report", headers=clinic.headers())

    assert response.status_code == 200
    assert "No measurements yet." in response.text
    assert "No risk alerts." in response.text


def test_the_chart_svg_is_a_standalone_deterministic_document_with_a_text_alternative(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    seed_course(app, clinic, patient_id)
    path = f"/v1/patients/{patient_id}/chart.svg"

    first = client.get(path, params={"instrument": "phq9"}, headers=clinic.headers())
    again = client.get(path, params={"instrument": "phq9"}, headers=clinic.headers())

    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "image/svg+xml"
    svg = first.text
    assert svg.startswith("<?xml")
    assert first.content == again.content
    assert '<title id="chart-phq9-title">PHQ-9 total score</title>' in svg
    # 18 → 4: first 18 (moderately severe), latest 4 (minimal), recovered, item 9 once.
    assert "first 18 (moderately severe), latest 4 (minimal)" in svg
    assert "Change: recovered (jacobson_truax)." in svg
    assert "Item 9 positive (item score 1 or more) at 1 measurement(s)." in svg
    assert points_in(svg, "chart-phq9-points-total") == 4
    assert "<script" not in svg


def test_a_chart_of_an_instrument_without_measurements_is_not_found(
    client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    response = client.get(
        f"/v1/patients/{patient_id}/chart.svg", params={"instrument": "gad7"}, headers=clinic.headers()
    )

    assert response.status_code == 404


def test_an_instrument_without_a_primary_score_charts_every_score_and_tables_them(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    seed(app, clinic, patient_id, "fscrs", fscrs(item9=0), day(0))
    seed(app, clinic, patient_id, "fscrs", fscrs(item9=2), day(7))

    html = client.get(f"/v1/patients/{patient_id}/report", headers=clinic.headers()).text

    for key in ("inadequate_self", "hated_self", "reassured_self", "self_criticism"):
        assert points_in(html, f"chart-fscrs-points-{key}") == 2, key
    assert points_in(html, "chart-fscrs-flags-risk") == 1
    # All items 1 (item 9 = 2 the second time): inadequate self = 9 items × 1 = 9; hated self = 4 + 2 = 6.
    assert re.search(r"<td class=\"num\">9</td>\s*<td class=\"num\">6</td>", html)


def test_unscored_prorated_and_missing_item9_measurements_are_marked(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    seed(app, clinic, patient_id, "phq9", phq9(18), day(0))
    seed(app, clinic, patient_id, "phq9", {**phq9(12), "9": None}, day(7))  # 1 missing: prorated 12 × 9/8 = 13.5
    seed(app, clinic, patient_id, "phq9", {"1": 2, "2": 2, "3": 2, "4": 2, "5": 2, "6": 2}, day(14))  # 3 missing

    html = client.get(f"/v1/patients/{patient_id}/report", headers=clinic.headers()).text

    assert points_in(html, "chart-phq9-points-total") == 2
    assert points_in(html, "chart-phq9-prorated-total") == 1
    assert points_in(html, "chart-phq9-flags-missing") == 2
    assert "13.5 (moderate), prorated" in html
    assert "not scored" in html


def test_the_report_and_chart_render_measurements_stored_at_the_ends_of_the_calendar(
    app: FastAPI, client: TestClient, clinic: ClinicKeys, patient_id: str
) -> None:
    # Stored past the API's validation, as older rows may be: the first and last instants a UTC datetime holds.
    seed(app, clinic, patient_id, "phq9", phq9(18, item9=1), EARLIEST_UTC)
    seed(app, clinic, patient_id, "phq9", phq9(11), day(0))
    seed(app, clinic, patient_id, "phq9", phq9(4), LATEST_UTC)
    patient = f"/v1/patients/{patient_id}"

    chart = client.get(f"{patient}/chart.svg", params={"instrument": "phq9"}, headers=clinic.headers())
    report = client.get(f"{patient}/report", headers=clinic.headers())

    assert chart.status_code == 200, chart.text
    assert points_in(chart.text, "chart-phq9-points-total") == 3
    assert "3 scored measurement(s) from 0001-01-01 to 9999-12-31" in chart.text
    assert report.status_code == 200, report.text
    assert "from 0001-01-01 to 9999-12-31" in report.text
    for path in ("trajectory", "change"):
        response = client.get(f"{patient}/{path}", params={"instrument": "phq9"}, headers=clinic.headers())
        assert response.status_code == 200, response.text
