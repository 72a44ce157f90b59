"""Offline geolocation of instance addresses (DB-IP Lite by default, or the user's .mmdb).

Thin, like the other packages: importing `cephalopod.geo.cli` (every ``cephalopod`` command)
must not load maxminddb. The locator is `cephalopod.geo.locate.GeoLocator`.
"""
