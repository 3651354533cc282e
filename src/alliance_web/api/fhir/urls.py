"""``/fhir/r4/`` routes. Resource ids: FHIR's ``[A-Za-z0-9\\-.]{1,64}``."""

from django.urls import path, re_path

from alliance_web.api.fhir import views

app_name = "fhir"
RID = r"(?P<rid>[A-Za-z0-9\-.]{1,64})"

urlpatterns = [
    path("metadata", views.Metadata.as_view(), name="metadata"),
    path("Questionnaire", views.QuestionnaireSearch.as_view(), name="questionnaire-search"),
    re_path(rf"^Questionnaire/{RID}$", views.QuestionnaireRead.as_view(), name="questionnaire"),
    path(
        "QuestionnaireResponse",
        views.QuestionnaireResponseSearch.as_view(),
        name="questionnaireresponse-search",
    ),
    re_path(
        rf"^QuestionnaireResponse/{RID}$",
        views.QuestionnaireResponseRead.as_view(),
        name="questionnaireresponse",
    ),
    path("Observation", views.ObservationSearch.as_view(), name="observation-search"),
    re_path(rf"^Observation/{RID}$", views.ObservationRead.as_view(), name="observation"),
    path("Patient", views.PatientSearch.as_view(), name="patient-search"),
    re_path(rf"^Patient/{RID}$", views.PatientRead.as_view(), name="patient"),
    path("AuditEvent", views.AuditEventSearch.as_view(), name="auditevent-search"),
]
