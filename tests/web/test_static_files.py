"""With DEBUG off, WhiteNoise serves the files every page links straight from the apps'
static folders (no ``collectstatic`` needed in the embedded default)."""

from pathlib import Path

import pytest

STATIC_ROOT = Path(__file__).resolve().parents[2] / "tasks" / "static"


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("tideline/app.css", "text/css"),
        ("tideline/app.js", "text/javascript"),
        ("tideline/vendor/htmx-2.0.11.min.js", "text/javascript"),
        ("tideline/favicon.svg", "image/svg+xml"),
    ],
)
def test_static_files_are_served_with_debug_off(client, settings, path, content_type):
    settings.DEBUG = False

    response = client.get(f"/static/{path}")

    assert response.status_code == 200
    assert response["Content-Type"].split(";")[0] == content_type
    assert response.getvalue() == (STATIC_ROOT / path).read_bytes()


def test_a_missing_static_file_is_not_found(client, settings):
    settings.DEBUG = False

    assert client.get("/static/tideline/no-such-file.css").status_code == 404
