"""The machine a run happens on: devices, environment description, peak memory, processes, results folders.

Modules here import torch (when they need it) inside the functions that use it, so
the command line and the leaderboard can use them without loading torch.
"""
