"""Plan service: publish validated timing plans over HTTP; field adapters pull them.

``store`` keeps every plan version in SQLite (``schema``: its migrations; ``version_mark``: the
newest committed version beside it), ``app`` builds the FastAPI app from ``read_routes``,
``publish_route``, ``problems`` (errors), ``gate`` (tokens, bounded bodies), ``catalog`` (served
networks), ``changes`` (long-poll wake-ups) and ``render`` (JSON, SUMO, UTDF); ``server`` runs it
under uvicorn with bounded request heads and connections, ``auth`` checks tokens, ``client``
talks to a server, ``adapter`` runs a SUMO simulation whose signals take their plans only from
the service, ``cli`` holds ``ctraffic serve``, ``publish`` and ``adapter``.
"""
