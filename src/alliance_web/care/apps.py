from django.apps import AppConfig


class CareConfig(AppConfig):
    name = "alliance_web.care"
    label = "care"
