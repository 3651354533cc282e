"""The OpenAPI document and its browsable docs, served offline.

Swagger UI's scripts and styles come from the ``drf-spectacular-sidecar`` package through the
static files (nothing from a CDN); the page's own initialiser is a separate script URL, so the
strict script policy holds. Swagger UI sets inline styles, so only this page allows them.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.decorators import method_decorator
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerSplitView
from rest_framework import permissions

from alliance_web.api.auth import BearerTokenAuthentication, VerifiedSessionAuthentication

_DOCS_CSP: dict[str, Any] = {
    **getattr(settings, "SECURE_CSP", {}),
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
}


def _csp(view: Any) -> Any:
    try:
        from django.views.decorators.csp import csp_override
    except ImportError:  # Django 5.2 with django-csp: its own decorator
        from csp.decorators import csp_update

        return csp_update({"style-src": ["'unsafe-inline'"]})(view)
    return csp_override(_DOCS_CSP)(view)


class OpenApiDocument(SpectacularJSONAPIView):
    """``/api/v1/openapi.json``: public, so that tools can read it before they have a token."""

    authentication_classes = [BearerTokenAuthentication, VerifiedSessionAuthentication]
    permission_classes = [permissions.AllowAny]
    urlconf = "alliance_web.api.urls_v1"


@method_decorator(_csp, name="dispatch")
class ApiDocs(SpectacularSwaggerSplitView):
    authentication_classes = [BearerTokenAuthentication, VerifiedSessionAuthentication]
    permission_classes = [permissions.AllowAny]
    url_name = "api:openapi"
    title = "Alliance API"
