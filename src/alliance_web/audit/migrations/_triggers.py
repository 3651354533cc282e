"""SQL for the append-only triggers, shared by the migration and the test flush."""

SQLITE_UPDATE = """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_auditevent
   BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END"""
SQLITE_DELETE = """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_auditevent
   WHEN NOT EXISTS (SELECT 1 FROM audit_maintenancewindow)
   BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END"""
SQLITE_DROP_DELETE = "DROP TRIGGER IF EXISTS audit_no_delete"
