from django.urls import path

from alliance_web.workspace.views import (
    alerts,
    client,
    emergency,
    episodes,
    pages,
    practice,
    report,
)

app_name = "workspace"
urlpatterns = [
    path("", pages.home, name="home"),
    path("clients/new/", episodes.new_client, name="client_new"),
    path("clients/<uuid:public_id>/", client.client_detail, name="client"),
    path("clients/<uuid:public_id>/episodes/new/", episodes.new_episode, name="episode_new"),
    path("clients/<uuid:public_id>/report.pdf", report.progress_report, name="report"),
    path("episodes/<uuid:public_id>/rating/", client.therapist_rating, name="rating"),
    path("episodes/<uuid:public_id>/stage/", client.confirm_stage, name="stage"),
    path("episodes/<uuid:public_id>/process-notes/", client.add_private_note, name="private_note"),
    path("episodes/<uuid:public_id>/relationship/", client.log_relationship, name="relationship"),
    path("episodes/<uuid:public_id>/checkins/", client.issue_checkin, name="checkin"),
    path("episodes/<uuid:public_id>/close/", episodes.close_episode, name="close"),
    path("sessions/<uuid:public_id>/attendance/", client.record_attendance, name="attendance"),
    path("checkins/<uuid:public_id>/code/", client.waiting_room_code, name="checkin_code"),
    path("alerts/", alerts.inbox, name="alerts"),
    path("alerts/<uuid:public_id>/", alerts.alert_detail, name="alert"),
    path("alerts/<uuid:public_id>/acknowledge/", alerts.acknowledge, name="alert_ack"),
    path("alerts/<uuid:public_id>/action/", alerts.record_action, name="alert_action"),
    path("practice/", practice.overview, name="practice"),
    path("emergency-access/", emergency.request_access, name="emergency_access"),
    path("emergency-access/grants/", emergency.grants, name="emergency_grants"),
]
