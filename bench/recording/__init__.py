"""A run's leaderboard row, trained or fitted: its lifecycle (start, finish, fail, interrupt, prune), phase timings."""
