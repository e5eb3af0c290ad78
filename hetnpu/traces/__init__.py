"""Traces of simulated runs for Perfetto / chrome://tracing."""

from hetnpu.traces.chrome import chrome_trace, write_chrome_trace

__all__ = ["chrome_trace", "write_chrome_trace"]
