from django.urls import include, path

from alliance_web import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("", views.home, name="home"),
    path("instruments/", views.instrument_list, name="instrument_list"),
    path("instruments/<slug:instrument_id>/", views.instrument_preview, name="instrument_preview"),
    path("accounts/", include("alliance_web.accounts.urls")),
    path("c/", include("alliance_web.portal.urls")),
    path("w/", include("alliance_web.workspace.urls")),
    path("privacy/", include("alliance_web.audit.urls")),
    path("", include("alliance_web.api.urls")),
]
