from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "alliance_web.audit"
    label = "audit"
