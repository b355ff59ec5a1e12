"""What an operator reads about the running shop: the story of one order, record by record,
and the pipeline at a glance."""
