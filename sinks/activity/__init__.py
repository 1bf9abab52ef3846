"""The activity store: what every watch and camera did, in SQLite, with pictures and search.

- :mod:`sinks.activity.schema`: the file (WAL), the ``events`` table and its FTS5 index.
- :mod:`sinks.activity.entries`: events to rows, as pure functions.
- :mod:`sinks.activity.pictures`: thumbnails and alert pictures on disk.
- :mod:`sinks.activity.store`: the writer thread, retention by age and size.
- :mod:`sinks.activity.query`: timeline, search, pictures, export.
- :mod:`sinks.activity.sink`: the sink that feeds the store from the sink hub.
"""
