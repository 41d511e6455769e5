"""Plan service: publish validated timing plans over HTTP; field adapters pull them.

``store`` keeps every plan version in SQLite, ``app`` serves them (FastAPI), ``server`` runs the
app under uvicorn with bounded request heads and connections, ``auth`` checks tokens, ``client``
talks to a server, ``adapter`` runs a SUMO simulation whose signals take their plans only from the
service, ``cli`` holds ``ctraffic serve``, ``publish`` and ``adapter``.
"""
