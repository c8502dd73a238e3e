"""Runtime library of swapcam: landmarks, alignment, swapper, merge, sinks, the live pipeline."""
