"""Models: none; this app is views over alliance_web.care."""
