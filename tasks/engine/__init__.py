"""The onecluster engine: inventory, components, graph, runner, executor and output.

Layer modules under ``tasks/`` declare components with these types and expose Invoke tasks;
everything that decides order, runs commands or prints lives here. See ``DESIGN.md``.
"""
