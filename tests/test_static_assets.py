"""Static files as production serves them: collectstatic writes content-hashed names with gzip and
brotli copies (WhiteNoise's compressed manifest storage), pages link the hashed names, and a file the
manifest does not know (nothing collected yet) keeps its own name instead of breaking the page."""

import json

import pytest
from django.core.management import call_command
from django.templatetags.static import static

from registry_ui.staticfiles import ConsoleStaticFilesStorage

# The demo/settings/collectstatic run on a database of their own (or none): the PostgreSQL suite would
# repeat them unchanged, so CI runs them in the SQLite suite only (.ci/run).
pytestmark = pytest.mark.own_database


def test_collectstatic_hashes_and_compresses_and_pages_link_the_hashed_names(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    # Our own CSS and JS only: brotli at full strength takes seconds on the vendored plotly bundle,
    # which `manage.py demo` (tests/test_demo.py) collects for real.
    call_command("collectstatic", interactive=False, verbosity=0, ignore_patterns=["admin", "rest_framework", "vendor"])
    manifest = json.loads((tmp_path / "staticfiles.json").read_text())["paths"]
    css = manifest["css/app.css"]
    assert css != "css/app.css" and css.startswith("css/app.") and css.endswith(".css")
    raw = (tmp_path / css).stat().st_size
    gz, br = (tmp_path / f"{css}.gz").stat().st_size, (tmp_path / f"{css}.br").stat().st_size
    assert br < gz < raw / 2
    assert (tmp_path / f"{manifest['js/confirm.js']}.gz").exists()
    assert ConsoleStaticFilesStorage(location=tmp_path).url("css/app.css") == f"/static/{manifest['css/app.css']}"


def test_an_uncollected_file_keeps_its_name(tmp_path):
    assert ConsoleStaticFilesStorage(location=tmp_path).url("js/confirm.js") == "/static/js/confirm.js"
    assert static("js/confirm.js") == "/static/js/confirm.js"  # the tests serve static/ uncollected


def test_every_static_file_a_template_names_exists():
    """A template that names a missing file gives a page whose script or stylesheet answers 404 (the
    hashed-name storage forgives a name it does not know), which no server-side test notices."""
    import re
    from pathlib import Path

    from django.conf import settings
    from django.contrib.staticfiles import finders

    named = {}
    for template in Path(settings.BASE_DIR, "templates").rglob("*.html"):
        for path in re.findall(r"""{%\s*static\s+['"]([^'"]+)['"]\s*%}""", template.read_text()):
            named.setdefault(path, template.name)
    assert "vendor/plotly-scatter-bar.min.js" in named and "js/charts.js" in named
    missing = {path: where for path, where in named.items() if finders.find(path) is None}
    assert not missing, f"templates name static files that do not exist: {missing}"
