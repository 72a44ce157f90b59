"""Telling the maintainers by e-mail: a mail per new registration, or a daily digest.

A package of its own: a consumer of the instances' signals that the hub's domains never
call, with its own settings (``MAIL_*``, ``NOTIFY_*``) and tasks.
"""
