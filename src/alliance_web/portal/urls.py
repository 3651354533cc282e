"""The client portal under ``/c/``: a check-in by link (``/c/<token>/``) or by waiting-room code."""

from django.urls import path, re_path

from alliance_web.portal import views

app_name = "portal"

# Link tokens are URL-safe base64 (24 characters today); the fixed words below are shorter than any
# token, so they can never collide with one.
LINK = r"(?P<token>[A-Za-z0-9_-]{10,100})"

urlpatterns = [
    path("", views.code_entry, name="code"),
    path("tablet/", views.checkin_by_code, name="tablet"),
    path("tablet/draft/", views.draft_by_code, name="tablet_draft"),
    re_path(rf"^{LINK}/$", views.checkin_by_link, name="checkin"),
    re_path(rf"^{LINK}/draft/$", views.draft_by_link, name="draft"),
    re_path(rf"^{LINK}$", views.add_slash),
    # Anything else under /c/ is a mistyped or cut-off link: a friendly 404, never Django's page.
    re_path(r"^.*$", views.not_found),
]
