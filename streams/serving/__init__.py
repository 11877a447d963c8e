"""Serving: HTTP views, the live dashboard, live metrics and the Prometheus exposition.

Nothing here imports the worker: the views read what
:class:`streams.serving.context.WorkerContext` describes.
"""
