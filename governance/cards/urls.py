"""URLs of namespace 'cards' (mounted in registry_ui/urls.py). Model names use the registry's converter."""

from django.urls import path, re_path

from governance.cards import views
from registry_ui.pages import urls as _registry_urls  # noqa: F401 - registers the "modelname" converter

app_name = "cards"
urlpatterns = [
    path("<modelname:name>/<int:version>/", views.card_detail, name="card_detail"),
    path("<modelname:name>/<int:version>/edit/", views.card_edit, name="card_edit"),
    path("<modelname:name>/<int:version>/publish/", views.card_publish, name="card_publish"),
    path("<modelname:name>/<int:version>/card.<str:fmt>", views.card_export, name="card_export"),
    re_path(r"^revisions/(?P<pk>[0-9]+)/(?P<action>approve|reject)/$", views.card_decide, name="card_decide"),
]
