"""The built-in metrics, one module each; every module declares ``METRIC``
(:class:`spsr.metrics.metric.Metric`) and is listed in :data:`spsr.metrics.registry.METRIC_MODULES`."""
