"""Operations on the Redis stacks: the bizosaas-redis command line and what it runs."""
