"""What every run shares, trained or fitted: its leaderboard lifecycle, phase timings, latency and scores."""
