"""What every training command does before it trains: plugins, checked names, each fold's datasets, the leaderboard."""
