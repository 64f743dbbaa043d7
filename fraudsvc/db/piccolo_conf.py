"""The module PICCOLO_CONF names: Piccolo's engine and app registry for fraudsvc."""

from __future__ import annotations

from piccolo.conf.apps import AppRegistry

from fraudsvc.db.engine import DB

APP_REGISTRY = AppRegistry(apps=["fraudsvc.db.piccolo_app"])

__all__ = ["APP_REGISTRY", "DB"]
