"""The orders example service: orders, and their stock asked of the inventory service."""
