"""``/api/v1/`` (REST, OpenAPI, docs) and ``/fhir/r4/`` (the FHIR facade).

URL names: ``api:<resource>-list`` / ``api:<resource>-detail`` and actions, ``api:openapi``,
``api:docs``; ``fhir:<name>``.
"""

from django.urls import include, path

from alliance_web.api import docs, transfer, urls_v1

api_patterns = (
    [
        *urls_v1.router.urls,
        path("imports/scores/", transfer.ScoreImport.as_view(), name="score-import"),
        path("exports/research.csv", transfer.ResearchExport.as_view(), name="research-export"),
        path("exports/practice.csv", transfer.PracticeExport.as_view(), name="practice-export"),
        path("openapi.json", docs.OpenApiDocument.as_view(), name="openapi"),
        path("docs/", docs.ApiDocs.as_view(), name="docs"),
    ],
    "api",
)

urlpatterns = [
    path("api/v1/", include(api_patterns)),
    path("fhir/r4/", include("alliance_web.api.fhir.urls")),
]
