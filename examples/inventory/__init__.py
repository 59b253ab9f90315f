"""The inventory example service: stock levels, behind the toolkit."""
