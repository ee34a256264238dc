"""The leaderboard: run storage (:mod:`.store`), statistics (:mod:`.stats`) and table exports (:mod:`.export`)."""
