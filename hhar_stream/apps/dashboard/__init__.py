"""`hhar dashboard`: a live web page of the processor's results and the pipeline's health.

A feed thread reads the result topics, the events and dead-letter topics and the processor's
status file (`feed`); `panels` turns what it read into charts (Plotly figures), tables (the
catalogue's views), health cards and alerts in words; a Starlette app served by uvicorn pushes
every new version to the browsers as server-sent events (`server`). Every script and style is
served by the dashboard itself: Plotly.js from the installed ``plotly`` package.
"""
