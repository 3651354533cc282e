from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "alliance_web.portal"
    label = "portal"

    def ready(self) -> None:
        from alliance_web.portal import redact

        redact.install()
