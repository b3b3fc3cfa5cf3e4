"""Full texts: each report's PDF found, attached, stored and read, between screening on title
and abstract and extraction."""
