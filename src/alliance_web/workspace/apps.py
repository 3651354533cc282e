from django.apps import AppConfig


class WorkspaceConfig(AppConfig):
    name = "alliance_web.workspace"
    label = "workspace"
