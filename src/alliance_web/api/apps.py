from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "alliance_web.api"
    label = "api"
