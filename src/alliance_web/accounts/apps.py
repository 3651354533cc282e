from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "alliance_web.accounts"
    label = "accounts"
