from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "alliance_web.accounts"
    label = "accounts"

    def ready(self) -> None:
        from alliance_web.accounts import signals  # noqa: F401 - connects the receivers
