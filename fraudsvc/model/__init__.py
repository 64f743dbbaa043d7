"""The model bundle (booster + feature spec + thresholds + LIME background) and its registry I/O."""
