"""Make the audit table append-only at the database level (SECURITY.md REQ-AU1).

UPDATE is always refused; DELETE only while a row exists in audit_maintenancewindow (opened by
the retention job for events older than the retention period). The application's database role
should in addition hold only INSERT and SELECT on audit_auditevent (docs/deployment.md).
"""

from django.db import migrations

from alliance_web.audit.migrations import _triggers

SQLITE = [_triggers.SQLITE_UPDATE, _triggers.SQLITE_DELETE]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS audit_no_update",
    "DROP TRIGGER IF EXISTS audit_no_delete",
]

POSTGRES = [
    """CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger AS $$
       BEGIN
         IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM audit_maintenancewindow) THEN
           RETURN OLD;
         END IF;
         RAISE EXCEPTION 'audit events are append-only';
       END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON audit_auditevent
       FOR EACH ROW EXECUTE FUNCTION audit_append_only()""",
]
POSTGRES_REVERSE = [
    "DROP TRIGGER IF EXISTS audit_no_update_delete ON audit_auditevent",
    "DROP FUNCTION IF EXISTS audit_append_only()",
]


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = {"sqlite": SQLITE, "postgresql": POSTGRES}.get(vendor, [])
    for sql in statements:
        schema_editor.execute(sql)
    apps.get_model("audit", "ChainHead").objects.get_or_create(id=1)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for sql in {"sqlite": SQLITE_REVERSE, "postgresql": POSTGRES_REVERSE}.get(vendor, []):
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
