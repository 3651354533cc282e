from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "alliance_web.portal"
    label = "portal"
