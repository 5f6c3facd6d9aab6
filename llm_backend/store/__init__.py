"""The experiment store: every run of every page in SQLite (WAL), projects, export and import."""
