"""The web app: pages and a JSON API over the command side and the read model."""
