from django.urls import path

from alliance_web.accounts import staff_views, views

app_name = "accounts"
urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("two-factor/", views.two_factor, name="two_factor"),
    path("password/", views.password_change, name="password_change"),
    path("welcome/", views.welcome, name="welcome"),
    path("staff/", staff_views.staff_list, name="staff"),
    path("staff/new/", staff_views.staff_new, name="staff_new"),
    path("staff/<int:user_id>/", staff_views.staff_detail, name="staff_detail"),
    path("staff/<int:user_id>/disable/", staff_views.staff_disable, name="staff_disable"),
    path("staff/<int:user_id>/enable/", staff_views.staff_enable, name="staff_enable"),
    path(
        "staff/<int:user_id>/reset-two-factor/",
        staff_views.staff_reset_two_factor,
        name="staff_reset_two_factor",
    ),
    path(
        "staff/<int:user_id>/end-sessions/",
        staff_views.staff_end_sessions,
        name="staff_end_sessions",
    ),
    path(
        "staff/<int:user_id>/reset-password/",
        staff_views.staff_reset_password,
        name="staff_reset_password",
    ),
]
