"""The application: wires sources, operators and sinks into a running process.

Graph, runtime (watches, runner), control, reload, metrics, replay and the
command line. Nothing below this package imports it.
"""
