"""The REST API v1 routes (also the URL conf the OpenAPI document is generated from)."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from alliance_web.api import transfer, views

router = SimpleRouter(trailing_slash=True)
router.register("clients", views.ClientViewSet, basename="client")
router.register("episodes", views.EpisodeViewSet, basename="episode")
router.register("sessions", views.SessionViewSet, basename="session")
router.register("checkins", views.CheckInViewSet, basename="checkin")
router.register("scores", views.ScoreViewSet, basename="score")
router.register("alerts", views.AlertViewSet, basename="alert")
router.register("goals", views.GoalViewSet, basename="goal")

urlpatterns = [
    path("api/v1/", include(router.urls)),
    path("api/v1/imports/scores/", transfer.ScoreImport.as_view()),
    path("api/v1/exports/research.csv", transfer.ResearchExport.as_view()),
    path("api/v1/exports/practice.csv", transfer.PracticeExport.as_view()),
]
