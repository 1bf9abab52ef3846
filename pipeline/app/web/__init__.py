"""The local web page (``[web]``): cameras, watches, the activity timeline and search, reports.

- :mod:`pipeline.app.web.server`: the server (standard library) and why.
- :mod:`pipeline.app.web.handler`: routes, the token, replies.
- :mod:`pipeline.app.web.view`: what the page shows, as data (also ``/api/state``).
- :mod:`pipeline.app.web.pages`: the HTML, every value escaped.
- :mod:`pipeline.app.web.actions`: starting and cancelling watches, and who may.
- :mod:`pipeline.app.web.static`: the one script and style sheet.
"""
