"""Ground-truth AgentDojo trajectories in intentguard's trace format (a benchmark, not the library)."""
