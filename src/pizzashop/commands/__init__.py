"""The command side: placing and cancelling an order, for the JSON API, the pages and the CLI alike."""
