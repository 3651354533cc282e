"""``/privacy/``: client privacy pages, erasure requests, the audit review and the incident register."""

from django.urls import path

from alliance_web.audit import incidents, views

app_name = "privacy"
urlpatterns = [
    path("", views.requests, name="requests"),
    path("audit/", views.audit_review, name="audit"),
    path("clients/<uuid:public_id>/", views.client_privacy, name="client"),
    path("clients/<uuid:public_id>/record.json", views.export_fhir, name="export_fhir"),
    path("clients/<uuid:public_id>/record.pdf", views.export_pdf, name="export_pdf"),
    path("clients/<uuid:public_id>/consent/", views.set_consent, name="consent"),
    path("clients/<uuid:public_id>/erasure/", views.request_erasure, name="erasure_request"),
    path("erasure/<int:request_id>/confirm/", views.confirm_erasure, name="erasure_confirm"),
    path("erasure/<int:request_id>/cancel/", views.cancel_erasure, name="erasure_cancel"),
    path("incidents/", incidents.incidents, name="incidents"),
    path("incidents/new/", incidents.incident_new, name="incident_new"),
    path("incidents/<int:incident_id>/", incidents.incident_edit, name="incident_edit"),
    path("incidents/export.csv", incidents.incident_export, name="incident_export"),
]
