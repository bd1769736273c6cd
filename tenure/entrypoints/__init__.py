"""Every way a Tenure process starts, in one place: one ``run`` per process.

Each module wires one service or worker from a :class:`tenure.config.Settings` (built and
checked once by the command line, ``tenure.cli.preflight``) with the shared parts of
:mod:`tenure.entrypoints.bootstrap`. ``docs/architecture.md`` ("Entry points") lists what
each one wires.

========================  ==============================  ==================================
module                    command                         runs
========================  ==============================  ==================================
``ingest``                ``tenure serve ingest``         ``services.ingest.app`` (uvicorn)
``query``                 ``tenure serve query``          ``services.query.app`` (uvicorn)
``archiver``              ``tenure worker archiver``      ``streams.archiver.worker.Archiver``
``sdk_validator``         ``tenure worker sdk-validator`` ``streams.sdk_validator.app`` (faust)
``projector``             ``tenure worker projector``     ``streams.projector.app`` (faust)
``replay``                ``tenure replay``               ``tenure.projection.replay``
``pipeline``              ``tenure catch-up``,            ``tenure.projection.catch_up``,
                          ``tenure deadletters redrive``  ``tenure.projection.redrive``
``platform``              ``tenure up``                   ``tenure.platform.supervisor``
========================  ==============================  ==================================
"""
