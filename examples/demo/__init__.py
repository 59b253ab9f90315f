"""The whole demo on loopback: the IdP, two example services and the Apache gateway, started and stopped together."""
