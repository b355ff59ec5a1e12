"""Free ports on 127.0.0.1 for the brokers and servers the tests start (the shop's own)."""

from __future__ import annotations

from pizzashop.local.ports import free_port, free_port_block, is_free

__all__ = ["free_port", "free_port_block", "is_free"]
