"""URLs of namespace 'portfolio' (mounted in registry_ui/urls.py)."""

from django.urls import path

from governance.portfolio import views

app_name = "portfolio"
urlpatterns = [
    path("", views.portfolio, name="portfolio"),
    path("portfolio.csv", views.portfolio_csv, name="portfolio_csv"),
]
