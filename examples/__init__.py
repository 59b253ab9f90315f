"""Example microservices protected by the resource-server toolkit, an API gateway in front of them, and the demo."""
