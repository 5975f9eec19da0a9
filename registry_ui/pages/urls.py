"""URLs of namespace 'registry' (mounted in registry_ui/urls.py).

Model names are MLflow user input (unicode, spaces, dots, slashes...). `ModelNameConverter` makes
them one path segment that survives reverse() -> browser -> WSGI decoding -> resolve(): '~' and '/'
are escaped as ~7E / ~2F (a WSGI server decodes %2F into '/', so percent-escaping is not enough), and
a name made only of dots is escaped too (browsers collapse '.' and '..' segments). reverse()
percent-encodes the rest (spaces, unicode, '?', '#', '%').
"""

import re

from django.urls import path, register_converter

from registry_ui.pages import views

_ESCAPED = re.compile(r"~([0-9A-F]{2})")


class ModelNameConverter:
    regex = r"[^/]+"

    def to_python(self, value: str) -> str:
        return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), value)

    def to_url(self, value: str) -> str:
        value = str(value).replace("~", "~7E").replace("/", "~2F")
        if value.strip(".") == "":
            value = value.replace(".", "~2E")
        return value


register_converter(ModelNameConverter, "modelname")

app_name = "registry"
urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("compare/", views.compare, name="compare"),
    path("compare.csv", views.compare_csv, name="compare_csv"),
    path("models/<modelname:name>/", views.model_detail, name="model_detail"),
    path("models/<modelname:name>/versions/<int:version>/", views.version_detail, name="version_detail"),
    path("models/<modelname:name>/versions/<int:version>/lineage/", views.lineage, name="lineage"),
]
